// GuardSpace quick start: the README's example, runnable. It attaches GuardSpace adapters to a tiny language model,
// fine-tunes it for a few Adam steps, and checks that the model's outputs on the harmful calibration prompts did not
// move while its outputs elsewhere did. Exits with 1 if either check fails.
//
// The lines between "quick start begins" and "quick start ends" are the README's quick start, verbatim
// (.ci/steps/samples.sh compares them).

// quick start begins
using GuardSpace;
using GuardSpace.Adapters;
using TorchSharp;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

manual_seed(1);
var model = Sequential(                          // any module whose target layers are managed Linear modules
    ("embed", Embedding(32, 16, dtype: ScalarType.Float64)),
    ("up", Linear(16, 32, dtype: ScalarType.Float64)),
    ("act", GELU()),
    ("down", Linear(32, 16, dtype: ScalarType.Float64)),
    ("lm_head", Linear(16, 32, dtype: ScalarType.Float64)));   // output heads are not guarded by default
var harmful = randint(0, 32, [2, 6]);            // harmful prompts: their outputs must not change
var safety = randint(0, 32, [4, 6]);             // safety-triggering prompts: orient the decomposition
var before = model.call(harmful).detach();

// The paper's null-space projection (Method = GuardSpace); the default adapters leave it to the refusal constraint.
using var guarded = GuardedModel.Attach(model, new GuardedLoraOptions { Rank = 4, Method = InitializationMethod.GuardSpace }, new CalibrationData
{
    RunSafetyPrompts = _ => model.call(safety).Dispose(),
    RunHarmfulPrompts = _ => model.call(harmful).Dispose(),
});
using var optimizer = guarded.WrapOptimizer(optim.Adam(guarded.TrainableParameters(), 1e-2));
for (var step = 0; step < 30; step++)
{
    using var scope = NewDisposeScope();
    var (x, y) = (randint(0, 32, [8, 6]), randint(0, 32, [8, 6]));
    optimizer.zero_grad();
    functional.cross_entropy(model.call(x).reshape(-1, 32), y.reshape(-1)).backward();
    optimizer.step();                            // projects, steps, re-projects
}

var drift = (model.call(harmful) - before).norm().item<double>() / before.norm().item<double>();
Console.WriteLine($"relative change of the outputs on the harmful prompts: {drift:G3}");
// quick start ends

// The checks of this sample (not part of the quick start).
var probe = randint(0, 32, [4, 6], generator: new Generator(7));
guarded.SetAdaptersEnabled(false);
var probeOriginal = model.call(probe).detach();
guarded.SetAdaptersEnabled(true);
var moved = (model.call(probe) - probeOriginal).norm().item<double>() / probeOriginal.norm().item<double>();
Console.WriteLine($"relative change of the outputs on other prompts:    {moved:G3}");
foreach (var layer in guarded.Layers)
{
    Console.WriteLine($"  {layer.Name}: {layer.OutFeatures} x {layer.InFeatures}, null space {layer.NullSpace?.NullDimension} of {layer.InFeatures} directions, frozen: {layer.Frozen}");
}

var ok = drift <= 1e-8 && moved > 1e-4;
Console.WriteLine(ok ? "OK: the harmful outputs stayed put while the model learned." : "FAILED: see the numbers above.");
return ok ? 0 : 1;
