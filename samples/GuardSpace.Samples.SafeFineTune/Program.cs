// From a Hugging Face checkpoint folder to a PEFT adapter: load a Llama-family model and its tokenizer, read the
// calibration prompts and the training data from files, attach GuardSpace (safety subspace + harmful null space),
// fine-tune, export the adapter in PEFT's layout, and generate a few answers before and after.
// With no arguments the sample writes a tiny random checkpoint and prompts of its own and runs everything on them.
// Exits with 1 when a check fails (outputs on the harmful prompts moved, or the export does not reproduce the model).
using System.Diagnostics;
using System.Text;
using GuardSpace;
using GuardSpace.Adapters;
using GuardSpace.Behaviour;
using GuardSpace.Models.Data;
using GuardSpace.Models.Llama;
using GuardSpace.Models.Tokenization;
using GuardSpace.Projection;
using GuardSpace.Samples.SafeFineTune;
using GuardSpace.Serialization;
using Microsoft.Extensions.Logging;
using Spectre.Console;
using TorchSharp;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

SampleOptions options;
try
{
    options = SampleOptions.Parse(args);
}
catch (Exception ex) when (ex is ArgumentException or FormatException)
{
    Console.Error.WriteLine(ex.Message);
    return 2;
}

var device = options.Device == "cuda" ? CUDA : CPU;
var timings = new List<(string Stage, TimeSpan Time)>();
var clock = Stopwatch.StartNew();
void Lap(string stage)
{
    timings.Add((stage, clock.Elapsed));
    clock.Restart();
}

string? scratch = null;
var embedded = options.Embedded;
if (embedded)
{
    scratch = Directory.CreateTempSubdirectory("guardspace-safe-fine-tune-").FullName;
    options = EmbeddedDefault.Write(scratch, options);
    AnsiConsole.MarkupLineInterpolated($"[grey]No --model given: wrote a tiny random Llama checkpoint and tokenizer to {options.Model} and prompts to {scratch}[/]");
    Lap("write the embedded checkpoint");
}

if (options.Threads is { } threads)
{
    set_num_threads(threads);
}

try
{
    // 1. The model, its tokenizer and the data.
    var modelDir = options.Model!;
    using var model = LlamaForCausalLM.FromPretrained(modelDir, options.Dtype, device);
    var tokenizer = HfTokenizer.Load(modelDir, model.Config);
    var c = model.Config;
    var parameters = model.parameters().Sum(p => p.NumberOfElements);
    AnsiConsole.MarkupLineInterpolated($"[bold]{c.Architecture}[/] from {modelDir}: {c.NumHiddenLayers} layers, width {c.HiddenSize}, {c.NumAttentionHeads} query / {c.KeyValueHeads} key-value heads, vocab {c.VocabSize}, {parameters:N0} parameters, {options.Dtype} on {device.type}");
    AnsiConsole.MarkupLineInterpolated($"tokenizer: {tokenizer.Source}");
    var safety = PromptFile.ReadPrompts(options.Safety!);
    var harmful = PromptFile.ReadPrompts(options.Harmful!);
    IReadOnlyList<PromptExample> train = PromptFile.Read(options.Train!);
    AnsiConsole.MarkupLineInterpolated($"prompts: {safety.Count} safety ({options.Safety}), {harmful.Count} harmful ({options.Harmful}), {train.Count} training examples ({options.Train})");
    Lap("load the checkpoint, tokenizer and files");

    var pad = (long)(tokenizer.EosId ?? 0);
    var showcase = train.Take(2).Select(e => e.Response is null ? e.Prompt : e.Prompt + "\n").Append(harmful[0]).ToList();
    var before = showcase.Select(p => Generate(model, tokenizer, p, options.NewTokens, device)).ToList();
    Lap("generate (before)");

    // The poison screen (with --benign): training examples the aligned model reads as harmful are dropped (or relabelled).
    if (options.Benign is { } benignFile)
    {
        var screened = DataScreen.Apply(model, tokenizer, harmful, PromptFile.ReadPrompts(benignFile), train, options, device);
        AnsiConsole.MarkupLineInterpolated($"poison screen: flagged {screened.Flagged.Count} of {train.Count} training examples (threshold {screened.Threshold:G4}, policy {screened.Policy})");
        train = screened.Items;
        if (train.Count == 0)
        {
            Console.Error.WriteLine("error: the poison screen flagged every training example; check --benign (it should look like your training prompts) or use --screen keep.");
            return 1;
        }

        Lap("screen the training data");
    }

    // The refusal data: the aligned model's own answers to the harmful prompts (one in four kept for validation).
    var refusals = options.RefusalConstraint ? RefusalSetup.Build(model, tokenizer, harmful, options, device) : null;
    if (refusals is not null)
    {
        AnsiConsole.MarkupLineInterpolated($"refusal data: {refusals.Training.Count} training / {refusals.Validation.Count} validation pairs from the aligned model's answers to {refusals.PromptCount} harmful prompts");
        Lap("build the refusal data");
    }

    // 2. GuardSpace: covariances of the safety and harmful prompts, null spaces, decomposition, surgery.
    model.eval();
    var harmfulBatches = Batches.Prompts(tokenizer, harmful, options.Batch, options.MaxLength);
    var safetyBatches = Batches.Prompts(tokenizer, safety, options.Batch, options.MaxLength);
    void Run(GuardSpace.Collection.ActivationCovarianceCollector collector, List<long[][]> batches)
    {
        foreach (var rows in batches)
        {
            using var scope = NewDisposeScope();
            var (ids, mask) = Batches.Pad(rows, pad, device);
            collector.SetTokenMask(mask);
            model.Forward(ids, mask);
        }

        collector.SetTokenMask(null);
    }

    // The library's default (capacity-aware null space, drift penalty with its floor) or, with --official, the paper's.
    var guardOptions = options.Official ? GuardedLoraOptions.Official() : new GuardedLoraOptions();
    guardOptions.Rank = options.Rank;
    guardOptions.TrackHarmfulDrift = true; // the safety monitor below, also with --official
    (guardOptions.NullSpace.Rule, guardOptions.NullSpace.EnergyFraction, guardOptions.NullSpace.RelativeThreshold) = (options.Rule, options.Energy, options.RelativeThreshold);
    GuardedModel guarded = null!;
    AnsiConsole.Progress().AutoClear(false).Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new ElapsedTimeColumn()).Start(ctx =>
    {
        var tasks = new Dictionary<AttachStage, ProgressTask>();
        guarded = GuardedModel.Attach(model, guardOptions, new CalibrationData
        {
            RunSafetyPrompts = collector => Run(collector, safetyBatches),
            RunHarmfulPrompts = collector => Run(collector, harmfulBatches),
        }, progress: new SynchronousProgress<AttachProgress>(p =>
        {
            if (!tasks.TryGetValue(p.Stage, out var task))
            {
                task = tasks[p.Stage] = ctx.AddTask($"GuardSpace: {p.Stage}", maxValue: Math.Max(1, p.Total));
            }

            task.Value = p.Done;
        }));
        foreach (var task in tasks.Values)
        {
            task.Value = task.MaxValue;
        }
    });
    using var guardedModel = guarded;
    var table = new Table().AddColumns("layer", "in", "null space", "adapter");
    foreach (var layer in guarded.Layers)
    {
        table.AddRow(layer.Name, layer.InFeatures.ToString(), layer.NullSpace is { } n ? $"{n.NullDimension} / {n.InputWidth}" : "-", layer.Frozen ? "[yellow]frozen (no null space)[/]" : $"rank {layer.Rank}");
    }

    AnsiConsole.Write(table);
    Lap("attach GuardSpace");

    var harmfulLogitsBefore = HarmfulLogits(model, harmfulBatches, pad, device);

    // 3. Fine-tune: AdamW wrapped by GuardSpace (projects the gradients, steps, re-projects A).
    var examples = train.Select(e => Batches.Example(tokenizer, e, options.MaxLength)).ToList();
    var trainable = guarded.TrainableParameters();
    double firstLoss = double.NaN, lastLoss = double.NaN;
    RefusalConstraint? constraint = null;
    if (trainable.Count == 0)
    {
        AnsiConsole.MarkupLine("[yellow]Every layer is frozen (no null space): nothing can train. Use fewer or shorter harmful prompts, or --null-space energy.[/]");
    }
    else
    {
        // The behaviour monitor: the constraint's readings (validation refusal loss, its target, the multiplier).
        RefusalConstraintProgress? reading = null;
        // Warnings (a constraint violated for long: the task pulls harder than the replayed refusals) go to the console.
        using var loggerFactory = LoggerFactory.Create(b => b.AddSimpleConsole(o => o.SingleLine = true).SetMinimumLevel(LogLevel.Warning));
        constraint = refusals is null ? null : RefusalSetup.Constraint(refusals, model, tokenizer, options, device, new SynchronousProgress<RefusalConstraintProgress>(p => reading = p), loggerFactory.CreateLogger("GuardSpace.Behaviour"));
        model.train();
        optim.Optimizer optimizer = guarded.WrapOptimizer(optim.AdamW(trainable, options.LearningRate, weight_decay: 0.0));
        optimizer = constraint?.Wrap(optimizer) ?? optimizer;
        using var ownedOptimizer = optimizer;
        var order = new Random(0);
        AnsiConsole.Progress().AutoClear(false).Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new ElapsedTimeColumn()).Start(ctx =>
        {
            var task = ctx.AddTask("fine-tune", maxValue: options.Steps);
            for (var step = 0; step < options.Steps; step++)
            {
                using var scope = NewDisposeScope();
                var batch = Enumerable.Range(0, options.Batch).Select(_ => examples[order.Next(examples.Count)]).ToList();
                var (ids, mask) = Batches.Pad([.. batch.Select(b => b.Ids)], pad, device);
                var (labels, _) = Batches.Pad([.. batch.Select(b => b.Labels)], Batches.Ignore, device);
                var logits = model.Forward(ids, mask);
                var t = ids.shape[1];
                var loss = functional.cross_entropy(
                    logits.narrow(1, 0, t - 1).reshape(-1, c.VocabSize).to_type(ScalarType.Float32),
                    labels.narrow(1, 1, t - 1).reshape(-1),
                    ignore_index: Batches.Ignore);
                optimizer.zero_grad();
                loss.backward();
                optimizer.step();
                lastLoss = loss.item<float>();
                firstLoss = double.IsNaN(firstLoss) ? lastLoss : firstLoss;
                // The safety monitor: how far the guarded layers' outputs on the harmful calibration activations moved.
                var monitor = step % 10 == 9 || step == options.Steps - 1 ? guarded.MeasureHarmfulDrift() : null;
                var behaviour = reading is { } r ? $", refusal loss {r.ValidationLoss:F3} / target {r.Target:F3}, multiplier {r.Multiplier:G3}" : string.Empty;
                task.Description = monitor is null ? task.Description : $"fine-tune (loss {lastLoss:F3}, harmful-output change {monitor.Max:G2}{behaviour})";
                task.Increment(1);
            }
        });
        model.eval();
        if (constraint?.Evaluate() is { } last)
        {
            AnsiConsole.MarkupLineInterpolated($"refusal constraint: validation refusal loss {last.ValidationLoss:F4} (aligned {constraint.Baseline:F4}, target {last.Target:F4}), multiplier {last.Multiplier:G3}{(last.RefusalRate is { } rate ? $", refusal rate {rate:P0}" : string.Empty)}");
        }
    }

    AnsiConsole.MarkupLineInterpolated($"training loss: {firstLoss:F3} -> {lastLoss:F3} over {options.Steps} steps");
    var finalDrift = guarded.MeasureHarmfulDrift();
    AnsiConsole.MarkupLineInterpolated($"safety monitor: largest change of a guarded layer's harmful outputs {finalDrift.Max:G3} ({finalDrift.MaxLayer ?? "-"}), rms {finalDrift.RootMeanSquare:G3}");
    Lap("fine-tune");

    var harmfulLogitsAfter = HarmfulLogits(model, harmfulBatches, pad, device);
    var drift = RelativeChange(harmfulLogitsAfter, harmfulLogitsBefore);
    AnsiConsole.MarkupLineInterpolated($"relative change of the logits on the harmful prompts: {drift:G3}");

    // 4. The PEFT adapter.
    guarded.ExportPeft(options.Out, new PeftExportOptions { BaseModelNameOrPath = options.BaseModel ?? Path.GetFullPath(modelDir), TaskType = "CAUSAL_LM" });
    foreach (var file in new[] { AdapterFiles.PeftConfigFile, AdapterFiles.PeftWeightsFile }.Select(f => Path.Combine(options.Out, f)))
    {
        AnsiConsole.MarkupLineInterpolated($"wrote {file} ({new FileInfo(file).Length:N0} bytes)");
    }

    Lap("export the PEFT adapter");

    var after = showcase.Select(p => Generate(model, tokenizer, p, options.NewTokens, device)).ToList();
    for (var i = 0; i < showcase.Count; i++)
    {
        AnsiConsole.MarkupLineInterpolated($"[bold]prompt[/] {Printable(showcase[i])}");
        AnsiConsole.MarkupLineInterpolated($"  before: {Printable(before[i])}");
        AnsiConsole.MarkupLineInterpolated($"  after:  {Printable(after[i])}");
    }

    Lap("generate (after)");

    // 5. The export applied by PEFT's rule to a fresh copy of the ORIGINAL checkpoint gives the fine-tuned model.
    var ok = true;
    if (options.Verify)
    {
        using var merged = PeftCheck.LoadMerged(modelDir, options.Out, options.Dtype, device);
        merged.eval();
        var probe = examples.Take(options.Batch).ToList();
        using var scope = NewDisposeScope();
        var (ids, mask) = Batches.Pad([.. probe.Select(p => p.Ids)], pad, device);
        using var noGrad = no_grad();
        var error = RelativeChange([merged.Forward(ids, mask)], [model.Forward(ids, mask)]);
        var bound = options.Dtype is ScalarType.Float32 or ScalarType.Float64 ? 1e-4 : 3e-2;
        AnsiConsole.MarkupLineInterpolated($"original checkpoint + exported adapter (PEFT's W + alpha/r B A) vs the fine-tuned model: relative error {error:G3} (bound {bound:G1})");
        ok &= error <= bound;
        Lap("verify the export");
    }

    if (embedded)
    {
        // --official: the embedded harmful prompts span an exact null space (fewer tokens than the width), so the drift is
        // rounding. The default: the refusal constraint ends within one more tolerance of its target.
        var held = constraint?.Latest is not { } reading || reading.ValidationLoss <= reading.Target + (reading.Target - constraint.Baseline);
        ok &= lastLoss < firstLoss && (options.Official ? drift <= 1e-5 : held);
    }

    var table2 = new Table().AddColumns("stage", "seconds");
    foreach (var (stage, time) in timings)
    {
        table2.AddRow(stage, time.TotalSeconds.ToString("F1", System.Globalization.CultureInfo.InvariantCulture));
    }

    table2.AddRow("[bold]total[/]", timings.Sum(t => t.Time.TotalSeconds).ToString("F1", System.Globalization.CultureInfo.InvariantCulture));
    AnsiConsole.Write(table2);
    AnsiConsole.MarkupLine(ok ? "[green]OK[/]" : "[red]FAILED[/]");
    return ok ? 0 : 1;
}
catch (Exception ex) when (ex is IOException or InvalidDataException or NotSupportedException or UnauthorizedAccessException)
{
    // Bad folders and files: the message names the file, the tensor or the line, and the fix.
    Console.Error.WriteLine($"error: {ex.Message}");
    return 1;
}
finally
{
    if (scratch is not null)
    {
        Directory.Delete(scratch, recursive: true);
    }
}

static string Generate(LlamaForCausalLM model, HfTokenizer tokenizer, string prompt, int newTokens, Device device) =>
    tokenizer.Decode(GreedyDecoding.Generate(model, tokenizer.Encode(prompt), newTokens, tokenizer.EosId, device));

static List<Tensor> HarmfulLogits(LlamaForCausalLM model, List<long[][]> batches, long pad, Device device)
{
    using var noGrad = no_grad();
    return [.. batches.Select(rows =>
    {
        using var scope = NewDisposeScope();
        var (ids, mask) = Batches.Pad(rows, pad, device);
        return (model.Forward(ids, mask) * mask.unsqueeze(-1)).to_type(ScalarType.Float64).MoveToOuterDisposeScope();
    })];
}

static double RelativeChange(List<Tensor> now, List<Tensor> reference)
{
    using var scope = NewDisposeScope();
    var diff = now.Zip(reference).Sum(p => (p.First.to_type(ScalarType.Float64) - p.Second.to_type(ScalarType.Float64)).square().sum().item<double>());
    var norm = reference.Sum(r => r.to_type(ScalarType.Float64).square().sum().item<double>());
    return Math.Sqrt(diff / norm);
}

static string Printable(string text)
{
    var s = new StringBuilder();
    foreach (var ch in text)
    {
        s.Append(char.IsControl(ch) ? $"\\u{(int)ch:x4}" : ch.ToString());
    }

    return s.Length == 0 ? "(nothing)" : s.ToString();
}

/// <summary>Reports on the calling thread (Progress&lt;T&gt; would post to the thread pool and race the bars).</summary>
internal sealed class SynchronousProgress<T>(Action<T> report) : IProgress<T>
{
    public void Report(T value) => report(value);
}
