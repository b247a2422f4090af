// Consumes GuardSpace.Core as a NuGet package: attaches guarded adapters to a tiny model, trains 2 steps and checks
// that the outputs on the harmful calibration prompts did not move. Running at all on a distribution whose libstdc++
// lacks GLIBCXX_3.4.32 (Debian 12) proves that the package's buildTransitive target patched libLibTorchSharp.so.
using GuardSpace;
using GuardSpace.Adapters;
using TorchSharp;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

Console.WriteLine($"GuardSpace {GuardSpaceInfo.Version}, libtorch {__version__}");
manual_seed(5);
var model = Sequential(
    ("embed", Embedding(20, 12, dtype: ScalarType.Float64)),
    ("fc1", Linear(12, 24, dtype: ScalarType.Float64)),
    ("act", Tanh()),
    ("fc2", Linear(24, 12, dtype: ScalarType.Float64)),
    ("lm_head", Linear(12, 20, dtype: ScalarType.Float64)));
var harmful = randint(0, 20, [2, 4]);
var safety = randint(0, 20, [4, 8]);
var before = model.call(harmful).detach();

using var guarded = GuardedModel.Attach(model, new GuardedLoraOptions { Rank = 2, Method = InitializationMethod.GuardSpace }, new CalibrationData
{
    RunSafetyPrompts = _ => model.call(safety).Dispose(),
    RunHarmfulPrompts = _ => model.call(harmful).Dispose(),
});
using var optimizer = guarded.WrapOptimizer(optim.AdamW(guarded.TrainableParameters(), 5e-2));
for (var step = 0; step < 2; step++)
{
    using var scope = NewDisposeScope();
    var (x, y) = (randint(0, 20, [4, 4]), randint(0, 20, [4, 4]));
    optimizer.zero_grad();
    functional.cross_entropy(model.call(x).reshape(-1, 20), y.reshape(-1)).backward();
    optimizer.step();
}

var drift = (model.call(harmful) - before).norm().item<double>() / before.norm().item<double>();
var trained = guarded.Adapters.Values.Any(a => (a.LoraB - a.InitialB).abs().max().item<double>() > 0);
Console.WriteLine($"{guarded.Adapters.Count} adapters; trained: {trained}; relative change on the harmful prompts: {drift:G3}");
return drift <= 1e-8 && trained && guarded.Adapters.Count == 2 ? 0 : 1;
