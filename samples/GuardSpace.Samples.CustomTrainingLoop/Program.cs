// GuardSpace in a hand-written training loop: the optimizer is NOT wrapped; the loop calls guarded.AfterBackward()
// after backward and guarded.AfterStep() after the optimizer's step, and a learning-rate scheduler drives the plain
// AdamW optimizer. The model declares one layer as the sealed Linear type, which GuardSpace cannot replace: it guards
// that layer through a forward hook instead (InterceptionMode.ForwardHook). Also shows logging and progress.
// Exits with 1 if the harmful-prompt outputs moved, training did nothing, or the schedule was not applied.
using GuardSpace;
using GuardSpace.Adapters;
using GuardSpace.Projection;
using GuardSpace.Samples.CustomTrainingLoop;
using GuardSpace.Targeting;
using Microsoft.Extensions.Logging;
using TorchSharp;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

manual_seed(2);
var model = new TinyClassifier(vocab: 40, width: 24, classes: 4);
model.eval(); // calibration should see no dropout; TinyClassifier has none, but this is the habit to keep

// Calibration data: 3 harmful prompts of 5 tokens (15 tokens < width 24, so every layer keeps a null space) and
// 12 safety-triggering prompts (60 tokens, more than the widest layer input, 48).
var harmful = randint(0, 40, [3, 5]);
var safety = randint(0, 40, [12, 5]);
var harmfulBefore = model.call(harmful).detach();

using var loggerFactory = LoggerFactory.Create(builder => builder.AddSimpleConsole(o => o.SingleLine = true).SetMinimumLevel(LogLevel.Information));
var options = new GuardedLoraOptions
{
    Rank = 4,
    Method = InitializationMethod.GuardSpace,
    Targets = TargetModules.Suffixes("proj_in", "proj_hidden", "proj_out"),
    NullSpace = new NullSpaceOptions { EmptyPolicy = EmptyNullSpacePolicy.Throw },
};
using var cancellation = new CancellationTokenSource(TimeSpan.FromMinutes(5));
using var guarded = GuardedModel.Attach(
    model,
    options,
    new CalibrationData
    {
        RunSafetyPrompts = _ => model.call(safety).Dispose(),
        RunHarmfulPrompts = _ => model.call(harmful).Dispose(),
    },
    loggerFactory,
    new ConsoleProgress(),
    cancellation.Token);

foreach (var layer in guarded.Layers)
{
    Console.WriteLine($"{layer.Name,-12} {layer.Interception,-12} adapter at '{layer.AdapterPath}', null space {layer.NullSpace!.NullDimension}/{layer.InFeatures}");
}

// The plain optimizer is built on the trainable parameters (after any .to(), which replaces parameter objects).
model.train();
using var adamW = optim.AdamW(guarded.TrainableParameters(), lr: 2e-2, weight_decay: 0.01);
var scheduler = optim.lr_scheduler.StepLR(adamW, step_size: 20, gamma: 0.5);
var firstLoss = double.NaN;
var lastLoss = double.NaN;
for (var step = 0; step < 60; step++)
{
    using var scope = NewDisposeScope();
    var tokens = randint(0, 40, [16, 5], generator: new Generator((ulong)(100 + (step % 8))));
    var labels = tokens.select(1, 0).remainder(4);   // a learnable toy task: the class is the first token mod 4
    adamW.zero_grad();
    var loss = functional.cross_entropy(model.call(tokens), labels);
    loss.backward();
    guarded.AfterBackward();   // grad(A) <- grad(A) P for every guarded adapter
    adamW.step();
    guarded.AfterStep();       // A <- A P: what keeps AdamW's update inside the null space
    scheduler.step();
    lastLoss = loss.item<double>();
    if (step == 0)
    {
        firstLoss = lastLoss;
    }
}

model.eval();
var lr = adamW.ParamGroups.First().LearningRate;
var drift = (model.call(harmful) - harmfulBefore).norm().item<double>() / harmfulBefore.norm().item<double>();
Console.WriteLine($"loss {firstLoss:F4} -> {lastLoss:F4}; learning rate now {lr:G3} (2e-2 halved 3 times)");
Console.WriteLine($"relative change of the outputs on the harmful prompts: {drift:G3}");

var ok = drift <= 1e-8 && lastLoss < firstLoss && Math.Abs(lr - 2e-2 / 8) < 1e-12;
Console.WriteLine(ok ? "OK" : "FAILED");
return ok ? 0 : 1;

namespace GuardSpace.Samples.CustomTrainingLoop
{
    /// <summary>Embedding, mean pooling and a 3-layer MLP classifier.</summary>
    internal sealed class TinyClassifier : Module<Tensor, Tensor>
    {
        // Field names become module paths. proj_in is declared as the sealed Linear type: GuardSpace cannot put an
        // adapter into this field, so it keeps the Linear (with the frozen residual) and adds the adapter via a hook,
        // registered beside it as "proj_in_guard". The other two are declared as Module<Tensor, Tensor> and are replaced.
#pragma warning disable IDE1006 // PyTorch-style names keep module paths familiar
        private TorchSharp.Modules.Embedding embed;
        private TorchSharp.Modules.Linear proj_in;
        private Module<Tensor, Tensor> proj_hidden;
        private Module<Tensor, Tensor> proj_out;
        private Module<Tensor, Tensor> head;
#pragma warning restore IDE1006

        public TinyClassifier(int vocab, int width, int classes)
            : base(nameof(TinyClassifier))
        {
            embed = Embedding(vocab, width, dtype: ScalarType.Float64);
            proj_in = Linear(width, width, dtype: ScalarType.Float64);
            proj_hidden = Linear(width, 2 * width, dtype: ScalarType.Float64);
            proj_out = Linear(2 * width, width, dtype: ScalarType.Float64);
            head = Linear(width, classes, dtype: ScalarType.Float64);
            RegisterComponents();
        }

        public override Tensor forward(Tensor tokens)
        {
            using var scope = NewDisposeScope();
            // Every guarded layer is invoked through call(): TorchSharp runs forward hooks only there.
            var x = embed.call(tokens);
            x = functional.gelu(proj_in.call(x));
            x = x + proj_out.call(functional.gelu(proj_hidden.call(x)));
            return head.call(x.mean([1])).MoveToOuterDisposeScope();
        }
    }

    /// <summary>Prints attach progress synchronously (Progress&lt;T&gt; would post to the thread pool).</summary>
    internal sealed class ConsoleProgress : IProgress<AttachProgress>
    {
        public void Report(AttachProgress value)
        {
            Console.WriteLine($"  attach: {value.Stage} {value.Done}/{value.Total} {value.Current}");
        }
    }
}
