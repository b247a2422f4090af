using GuardSpace.Adapters;
using GuardSpace.Collection;
using GuardSpace.Projection;
using GuardSpace.Tests.Adapters;
using GuardSpace.Tests.TestUtilities;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace GuardSpace.Tests.Training;

/// <summary>
/// The safety monitor and the harmful-drift penalty against an independent reference: the layer inputs captured on the
/// harmful prompts BEFORE attach, and the weight change read from the merged weights (float64).
/// </summary>
public class HarmfulDriftTests
{
    private static readonly Tensor HarmfulPrompts = TinyTransformer.Tokens(6, 6, 100).DetachFromDisposeScope(); // 36 tokens > width 16

    /// <summary>Inputs of every target Linear on the harmful prompts, captured with plain forward hooks on the original model.</summary>
    private static Dictionary<string, Tensor> CaptureInputs(Module<Tensor, Tensor> model)
    {
        var inputs = new Dictionary<string, Tensor>(StringComparer.Ordinal);
        var removers = model.named_modules().Where(m => m.module is Linear && !m.name.EndsWith("lm_head", StringComparison.Ordinal))
            .Select(m => ((Linear)m.module).register_forward_hook((_, x, _) =>
            {
                inputs[m.name] = x.detach().reshape(-1, x.shape[^1]).clone().DetachFromDisposeScope();
                return null!;
            })).ToList();
        using (no_grad())
        {
            model.call(HarmfulPrompts).Dispose();
        }

        removers.ForEach(r => r.remove());
        return inputs;
    }

    private static Dictionary<string, Tensor> Weights(Module<Tensor, Tensor> model) =>
        model.named_modules().Where(m => m.module is Linear && !m.name.EndsWith("lm_head", StringComparison.Ordinal))
            .ToDictionary(m => m.name, m => ((Linear)m.module).weight!.detach().clone().DetachFromDisposeScope(), StringComparer.Ordinal);

    private static GuardedLoraOptions Options(InitializationMethod method, double penalty = 0, double floor = 0) => new()
    {
        HarmfulDriftFloor = floor,
        Rank = 4,
        Scale = 2, // s != 1, so a misplaced scale factor shows

        Method = method,
        Seed = 5,
        TrackHarmfulDrift = true,
        HarmfulDriftPenalty = penalty,
        Collection = new CovarianceCollectionOptions { Scaling = ActivationScaling.None },
        // A loose rule, so that the projected adapters can move along directions that carry harmful energy.
        NullSpace = new NullSpaceOptions { Rule = NullSpaceThresholdRule.EnergyFraction, EnergyFraction = 0.9 },
    };

    private static CalibrationData Calibration(Module<Tensor, Tensor> model) => new()
    {
        RunSafetyPrompts = _ => model.call(TinyTransformer.Tokens(4, 6, 200)).Dispose(),
        RunHarmfulPrompts = _ => model.call(HarmfulPrompts).Dispose(),
    };

    [Theory]
    [InlineData(InitializationMethod.Lora)]
    [InlineData(InitializationMethod.GuardSpace)]
    public void MonitorEqualsTheOutputChangeOnTheCapturedHarmfulInputs(InitializationMethod method)
    {
        using var scope = NewDisposeScope();
        var model = new TinyTransformer();
        var inputs = CaptureInputs(model);
        var original = Weights(model);
        using var guarded = GuardedModel.Attach(model, Options(method), Calibration(model));

        var atInit = guarded.MeasureHarmfulDrift();
        Assert.Equal(12, atInit.Layers.Count);
        Assert.All(atInit.Layers, l => Assert.True(l.RelativeChange <= 1e-12, $"{l.Layer}: {l.RelativeChange:G3} at init"));

        using var optimizer = guarded.WrapOptimizer(optim.Adam(guarded.TrainableParameters(), 1e-2));
        for (var step = 0; step < 30; step++)
        {
            GuardedModelInvariantTests.TrainStep(model, optimizer, step);
        }

        var report = guarded.MeasureHarmfulDrift();
        guarded.Merge();
        var merged = guarded.AdapterList.ToDictionary(a => a.LayerName, a => a.FrozenWeight.detach().clone());
        guarded.Unmerge();
        var moved = 0;
        foreach (var layer in report.Layers)
        {
            var x = inputs[layer.Layer];
            var w = original[layer.Layer];
            var expected = (merged[layer.Layer] - w).matmul(x.T).norm().ToDouble() / w.matmul(x.T).norm().ToDouble();
            Assert.True(Math.Abs(layer.RelativeChange - expected) <= 1e-9 + 1e-7 * expected, $"{method} {layer.Layer}: monitor {layer.RelativeChange:G6}, reference {expected:G6}");
            moved += expected > 1e-4 ? 1 : 0;
        }

        Assert.True(moved >= 6, $"only {moved} layers moved: the check would be vacuous");
        Assert.Equal(report.Layers.Max(l => l.RelativeChange), report.Max);
    }

    [Theory]
    [InlineData(InitializationMethod.Lora, 0.0)]
    [InlineData(InitializationMethod.GuardSpace, 0.0)]
    [InlineData(InitializationMethod.Lora, 0.5)]
    [InlineData(InitializationMethod.GuardSpace, 0.5)]
    public void PenaltyGradientEqualsAutogradOfTheExplicitPenalty(InitializationMethod method, double floor)
    {
        using var scope = NewDisposeScope();
        const double lambda = 3.0;
        var model = new TinyTransformer();
        var inputs = CaptureInputs(model);
        var original = Weights(model);
        using var guarded = GuardedModel.Attach(model, Options(method, lambda, floor), Calibration(model));
        using var warmUp = guarded.WrapOptimizer(optim.Adam(guarded.TrainableParameters(), 1e-2));
        for (var step = 0; step < 10; step++)
        {
            GuardedModelInvariantTests.TrainStep(model, warmUp, step);
        }

        // Reference: lambda * sum_l (||dW_l X_l^T||^2 + floor * tr(X_l^T X_l) / n * ||dW_l||^2) / ||W_l X_l^T||^2 through
        // autograd, on copies of the factors.
        var copies = guarded.AdapterList.ToDictionary(
            a => a.LayerName,
            a => (A: a.LoraA.detach().clone().requires_grad_(true), B: a.LoraB.detach().clone().requires_grad_(true)));
        Tensor penalty = tensor(0.0, dtype: ScalarType.Float64);
        foreach (var a in guarded.AdapterList)
        {
            var (ca, cb) = copies[a.LayerName];
            var dw = (cb.matmul(ca) - a.InitialB.matmul(a.InitialA)) * a.Scale;
            var x = inputs[a.LayerName];
            var z = original[a.LayerName].matmul(x.T).pow(2).sum();
            var rho = floor * x.pow(2).sum() / x.shape[1];
            penalty = penalty + ((dw.matmul(x.T).pow(2).sum() + (rho * dw.pow(2).sum())) / z);
        }

        (penalty * lambda).backward();

        // The library: zero task gradient, then the hook adds the penalty gradient (and projects, a no-op on it).
        guarded.AdapterList.ToList().ForEach(a =>
        {
            a.LoraA.grad?.zero_();
            a.LoraB.grad?.zero_();
        });
        guarded.AfterBackward();
        var checkedLayers = 0;
        foreach (var a in guarded.AdapterList)
        {
            var (ca, cb) = copies[a.LayerName];
            var scale = Math.Max(ca.grad!.norm().ToDouble(), 1e-30);
            Assert.True((a.LoraA.grad! - ca.grad!).norm().ToDouble() <= 1e-9 * scale + 1e-14, $"{method} {a.LayerName}: dA differs");
            Assert.True((a.LoraB.grad! - cb.grad!).norm().ToDouble() <= 1e-9 * Math.Max(cb.grad!.norm().ToDouble(), 1e-30) + 1e-14, $"{method} {a.LayerName}: dB differs");
            checkedLayers += scale > 1e-8 ? 1 : 0;
        }

        Assert.True(checkedLayers >= 6, $"only {checkedLayers} layers had a penalty gradient: the check would be vacuous");
    }

    [Fact]
    public void PenaltyReducesTheHarmfulDriftOfTheSameTraining()
    {
        double Drift(double penalty)
        {
            using var scope = NewDisposeScope();
            var model = new TinyTransformer();
            using var guarded = GuardedModel.Attach(model, Options(InitializationMethod.Lora, penalty), Calibration(model));
            using var optimizer = guarded.WrapOptimizer(optim.Adam(guarded.TrainableParameters(), 1e-2));
            for (var step = 0; step < 60; step++)
            {
                GuardedModelInvariantTests.TrainStep(model, optimizer, step);
            }

            return guarded.MeasureHarmfulDrift().RootMeanSquare;
        }

        var free = Drift(0);
        var penalised = Drift(100);
        Assert.True(free > 1e-2, $"unpenalised drift {free:G3}: the training must move the harmful outputs for the test to mean anything");
        Assert.True(penalised < free / 3, $"penalised drift {penalised:G3} vs unpenalised {free:G3}");
    }

    [Fact]
    public void SaveAndLoadKeepTheMonitorAndThePenalty()
    {
        using var scope = NewDisposeScope();
        var directory = Path.Combine(Path.GetTempPath(), "guardspace-drift-" + Guid.NewGuid().ToString("N"));
        try
        {
            var model = new TinyTransformer();
            double[] before, means;
            using (var guarded = GuardedModel.Attach(model, Options(InitializationMethod.GuardSpace, penalty: 7, floor: 0.25), Calibration(model)))
            {
                using var optimizer = guarded.WrapOptimizer(optim.Adam(guarded.TrainableParameters(), 1e-2));
                for (var step = 0; step < 15; step++)
                {
                    GuardedModelInvariantTests.TrainStep(model, optimizer, step);
                }

                before = [.. guarded.MeasureHarmfulDrift().Layers.Select(l => l.RelativeChange)];
                means = [.. guarded.AdapterList.Select(a => a.HarmfulMeanEigenvalue)];
                Assert.All(means, m => Assert.True(m > 0));
                Assert.Contains(before, d => d > 1e-4);
                guarded.Save(directory);
            }

            var fresh = new TinyTransformer(); // the same original weights (same seed)
            using var loaded = GuardedModel.Load(fresh, directory);
            Assert.Equal(7, loaded.Options.EffectiveHarmfulDriftPenalty);
            Assert.Equal(0.25, loaded.Options.HarmfulDriftFloor);
            Assert.Equal(means, loaded.AdapterList.Select(a => a.HarmfulMeanEigenvalue));
            var after = loaded.MeasureHarmfulDrift().Layers.Select(l => l.RelativeChange).ToArray();
            Assert.Equal(before.Length, after.Length);
            for (var i = 0; i < before.Length; i++)
            {
                Assert.True(Math.Abs(before[i] - after[i]) <= 1e-10 + 1e-8 * before[i], $"layer {i}: {before[i]:G6} before, {after[i]:G6} after load");
            }
        }
        finally
        {
            if (Directory.Exists(directory))
            {
                Directory.Delete(directory, recursive: true);
            }
        }
    }

    [Fact]
    public void OfficialPresetIsThePapersConfigurationAndTheDefaultOnlyWidensTooSmallNullSpaces()
    {
        var official = GuardedLoraOptions.Official();
        Assert.Equal(InitializationMethod.GuardSpace, official.Method);
        Assert.Equal(NullSpaceThresholdRule.Relative, official.NullSpace.Rule);
        Assert.Equal(1e-6, official.NullSpace.RelativeThreshold);
        Assert.Equal(1e-8, official.NullSpace.AbsoluteFloor);
        Assert.Equal(EmptyNullSpacePolicy.FreezeLayer, official.NullSpace.EmptyPolicy);
        Assert.Equal(0, official.NullSpace.MinimumNullFraction);
        Assert.Equal(0, official.EffectiveHarmfulDriftPenalty);
        Assert.Equal(0, official.HarmfulDriftFloor);

        // The default adapters are stage I only (the refusal constraint and the screen protect); asked for the projection,
        // the default null-space options are the capacity-aware rule with the floored drift penalty.
        Assert.Equal(InitializationMethod.CorDAKpm, new GuardedLoraOptions().Method);
        Assert.Equal(0, new GuardedLoraOptions().EffectiveHarmfulDriftPenalty);
        var defaults = new GuardedLoraOptions { Method = InitializationMethod.GuardSpace };
        Assert.Equal(NullSpaceThresholdRule.Relative, defaults.NullSpace.Rule); // the official threshold where it leaves room
        Assert.Equal(EmptyNullSpacePolicy.FallBackToEnergy, defaults.NullSpace.EmptyPolicy);
        Assert.Equal(0.125, defaults.NullSpace.MinimumNullFraction);
        Assert.Equal(GuardedLoraOptions.DefaultHarmfulDriftPenalty, defaults.EffectiveHarmfulDriftPenalty);
        Assert.Equal(0.1, defaults.HarmfulDriftFloor);
        Assert.Equal(0, new GuardedLoraOptions { Method = InitializationMethod.Lora }.EffectiveHarmfulDriftPenalty);
    }

    [Fact]
    public void MonitorRefusesWhenTheDriftIsNotTracked()
    {
        using var scope = NewDisposeScope();
        var model = new TinyTransformer();
        using var guarded = GuardedModel.Attach(model, new GuardedLoraOptions { Rank = 2, Method = InitializationMethod.Lora });
        var error = Assert.Throws<InvalidOperationException>(() => guarded.MeasureHarmfulDrift());
        Assert.Contains("TrackHarmfulDrift", error.Message, StringComparison.Ordinal);
    }
}
