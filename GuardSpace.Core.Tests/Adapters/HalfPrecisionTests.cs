using GuardSpace.Adapters;
using GuardSpace.Tests.TestUtilities;
using TorchSharp;
using Xunit.Abstractions;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace GuardSpace.Tests.Adapters;

/// <summary>Over float16 and bfloat16 weights the factors and their projection stay float32 (issue 10, item 5).</summary>
public class HalfPrecisionTests(ITestOutputHelper output)
{
    private const int Vocab = 32;

    private static Module<Tensor, Tensor> HalfModel(ScalarType dtype)
    {
        manual_seed(1);
        var model = Sequential(
            ("embed", Embedding(Vocab, 16, dtype: ScalarType.Float32)),
            ("up", Linear(16, 32, dtype: ScalarType.Float32)),
            ("act", GELU()),
            ("down", Linear(32, 16, dtype: ScalarType.Float32)),
            ("lm_head", Linear(16, Vocab, dtype: ScalarType.Float32)));
        model.to(dtype);
        return model;
    }

    private static Tensor Tokens(int batch, int seed) => randint(0, Vocab, [batch, 6], generator: new Generator((ulong)seed));

    private static readonly Tensor Harmful = Tokens(2, 100).DetachFromDisposeScope();   // 12 tokens: null spaces of 4 and 20 directions
    private static readonly Tensor Safety = Tokens(6, 200).DetachFromDisposeScope();

    private static GuardedModel Attach(Module<Tensor, Tensor> model) =>
        // No drift penalty: this checks the projection's precision, and the penalty would restrain the training that keeps
        // the check from being vacuous (HarmfulDriftTests cover the penalty).
        GuardedModel.Attach(model, new GuardedLoraOptions { Method = InitializationMethod.GuardSpace, Rank = 3, HarmfulDriftPenalty = 0 }, new CalibrationData
        {
            RunSafetyPrompts = _ => model.call(Safety).Dispose(),
            RunHarmfulPrompts = _ => model.call(Harmful).Dispose(),
        });

    private static double Drift(Tensor after, Tensor before)
    {
        using var scope = NewDisposeScope();
        var a = after.to_type(ScalarType.Float64);
        var b = before.to_type(ScalarType.Float64);
        return (a - b).norm().ToDouble() / b.norm().ToDouble();
    }

    [Theory]
    [InlineData(ScalarType.Float16)]
    [InlineData(ScalarType.BFloat16)]
    public void TwoHundredAdamStepsStayFiniteAndLeaveTheHarmfulOutputsAtRoundingLevel(ScalarType dtype)
    {
        using var scope = NewDisposeScope();
        var model = HalfModel(dtype);
        var before = model.call(Harmful).detach();
        using var guarded = Attach(model);
        var initial = model.call(Harmful).detach();
        var up = (Module<Tensor, Tensor>)model.named_children().Single(c => c.name == "up").module;
        var embedded = ((Module<Tensor, Tensor>)model.named_children().Single(c => c.name == "embed").module).call(Harmful).detach();
        var upInitial = up.call(embedded).detach();
        var probe = Tokens(4, 7);
        var probeBefore = model.call(probe).detach();
        using var optimizer = guarded.WrapOptimizer(optim.Adam(guarded.TrainableParameters(), 1e-2)); // default eps 1e-8
        for (var step = 0; step < 200; step++)
        {
            using var stepScope = NewDisposeScope();
            optimizer.zero_grad();
            var logits = model.call(Tokens(8, 1000 + (step % 10))).to_type(ScalarType.Float32);
            functional.cross_entropy(logits.reshape(-1, Vocab), Tokens(8, 5000 + (step % 10)).reshape(-1)).backward();
            optimizer.step();
        }

        Assert.All(guarded.TrainableParameters(), p => Assert.True(isfinite(p).all().item<bool>(), "factors finite"));
        var after = model.call(Harmful).detach();
        Assert.True(isfinite(after).all().item<bool>());
        var drift = Drift(after, initial);
        var upDrift = Drift(up.call(embedded).detach(), upInitial);
        var moved = Drift(model.call(probe).detach(), probeBefore);
        output.WriteLine($"{dtype}: harmful drift {drift:G3} (first layer {upDrift:G3}; at init {Drift(initial, before):G3}), elsewhere {moved:G3}");
        Assert.True(moved > 1e-2, $"training moved the outputs elsewhere: {moved:G3}");

        // The first guarded layer sees the harmful activations exactly as calibrated: its output does not move at all.
        // Deeper layers see them rounded again to the half type, so the logits move by about one unit of rounding
        // (while the outputs elsewhere moved by more than 100 %).
        Assert.Equal(0.0, upDrift);
        var unit = dtype == ScalarType.Float16 ? 4.9e-4 : 3.9e-3;
        Assert.True(drift <= 2 * unit, $"{dtype}: harmful outputs drifted by {drift:G3}");
        Assert.All(guarded.Adapters.Values, a =>
        {
            Assert.Equal(dtype, a.FrozenWeight.dtype);
            Assert.Equal(ScalarType.Float32, a.LoraA.dtype);
            Assert.Equal(ScalarType.Float32, a.InitialB.dtype);
        });
    }

    [Theory]
    [InlineData(ScalarType.Float16)]
    [InlineData(ScalarType.BFloat16)]
    public void MergeSaveLoadAndHalfConversionKeepFloat32Factors(ScalarType dtype)
    {
        using var scope = NewDisposeScope();
        var model = HalfModel(dtype);
        using var guarded = Attach(model);
        using (no_grad())
        {
            guarded.Adapters.Values.ToList().ForEach(a => a.LoraB.add_(0.05));
        }

        var probe = Tokens(3, 9);
        var expected = model.call(probe).detach();
        var unit = dtype == ScalarType.Float16 ? 4.9e-4 : 3.9e-3;
        guarded.Merge();
        Assert.True(Drift(model.call(probe).detach(), expected) <= 4 * unit, "merged");
        guarded.Unmerge();
        Assert.True(Drift(model.call(probe).detach(), expected) <= 2 * unit, "unmerged");

        using var directory = TempDirectory.Create("guardspace-half-");
        guarded.Save(directory);
        var fresh = HalfModel(dtype);
        using var loaded = GuardedModel.Load(fresh, directory);
        Assert.All(loaded.Adapters.Values, a => Assert.Equal(ScalarType.Float32, a.LoraB.dtype));
        Assert.True(Drift(fresh.call(probe).detach(), model.call(probe).detach()) <= unit, "loaded = saved");

        // model.half() after attaching converts the frozen weights but keeps the factors in float32.
        var full = HalfModel(ScalarType.Float32);
        using var attached = Attach(full);
        full.to(dtype);
        Assert.All(attached.Adapters.Values, a =>
        {
            Assert.Equal(dtype, a.FrozenWeight.dtype);
            Assert.Equal(ScalarType.Float32, a.LoraA.dtype);
            Assert.Equal(ScalarType.Float32, a.InitialA.dtype);
        });
        Assert.Equal(dtype, full.call(probe).dtype);
    }
}
