using System.Diagnostics;
using GuardSpace.Adapters;
using GuardSpace.Tests.Adapters;
using GuardSpace.Tests.TestUtilities;
using GuardSpace.Training;
using TorchSharp;
using TorchSharp.Modules;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace GuardSpace.Tests.Training;

public class GuardedOptimizerTests(ITestOutputHelper output)
{
    [Fact]
    public void LearningRateSchedulersDriveTheInnerOptimizer()
    {
        using var scope = NewDisposeScope();
        var model = new TinyTransformer();
        using var guarded = GuardedModelInvariantTests.AttachGuardSpace(model);
        var inner = optim.Adam(guarded.TrainableParameters(), 0.01);
        using var optimizer = guarded.WrapOptimizer(inner);
        var scheduler = optim.lr_scheduler.StepLR(optimizer, step_size: 5, gamma: 0.5);
        for (var step = 0; step < 10; step++)
        {
            GuardedModelInvariantTests.TrainStep(model, optimizer, step);
            scheduler.step();
        }

        Assert.Equal(0.0025, inner.ParamGroups.First().LearningRate, 12);
        Assert.Same(inner, optimizer.Inner);
    }

    [Fact]
    public void HookKeepsParameterHandlesSoOptimizerStateSurvives()
    {
        using var scope = NewDisposeScope();
        var model = new TinyTransformer();
        using var guarded = GuardedModelInvariantTests.AttachGuardSpace(model);
        var handles = guarded.TrainableParameters().Select(p => p.Handle).ToList();
        var inner = optim.Adam(guarded.TrainableParameters(), 0.01);
        using var optimizer = guarded.WrapOptimizer(inner);
        const int steps = 3;
        for (var step = 0; step < steps; step++)
        {
            GuardedModelInvariantTests.TrainStep(model, optimizer, step);
        }

        Assert.Equal(handles, guarded.TrainableParameters().Select(p => p.Handle).ToList());
        Assert.Equal(handles, inner.parameters().Select(p => p.Handle).ToList());

        // Adam's state (one entry per parameter, in parameter order) counted every step and accumulated a first moment
        // for every factor, the guarded A's included: it was neither reset nor left behind on a replaced tensor.
        var states = inner.state_dict().State;
        Assert.Equal(handles.Count, states.Count);
        Assert.All(states, state =>
        {
            var adam = Assert.IsType<Adam.State>(state);
            Assert.Equal(steps, adam.step);
            Assert.True(adam.exp_avg.abs().max().item<double>() > 0, "first moment accumulated");
        });
    }

    [Fact]
    public void AsftPenaltyMatchesItsDenseDefinitionAndHasGradients()
    {
        using var scope = NewDisposeScope();
        var model = new TinyTransformer();
        using var guarded = GuardedModel.Attach(model, new GuardedLoraOptions { Method = InitializationMethod.Lora, Rank = 3, Seed = 1 });
        using (no_grad())
        {
            foreach (var a in guarded.Adapters.Values)
            {
                a.LoraB.normal_(0, 0.1);
            }
        }

        var baseWeights = guarded.Adapters.Values.ToDictionary(a => a.LayerName, a => a.FrozenWeight.detach().clone());
        var aligned = baseWeights.ToDictionary(kv => kv.Key, kv => kv.Value + 0.05 * randn_like(kv.Value));
        using var asft = new AsftRegularizer(guarded.Adapters, baseWeights, aligned, lambda: 0.7);
        var penalty = asft.Penalty();

        double expected = 0;
        foreach (var a in guarded.Adapters.Values)
        {
            var v = Oracle.ToMatrix(aligned[a.LayerName]) - Oracle.ToMatrix(baseWeights[a.LayerName]);
            var c = v * v.Transpose() / v.FrobeniusNorm();
            var delta = Oracle.ToMatrix(a.LoraB) * Oracle.ToMatrix(a.LoraA);
            var m = delta - c * delta;
            expected += m.FrobeniusNorm() * m.FrobeniusNorm();
        }

        Assert.Equal(0.7 * expected, penalty.item<double>(), 1e-10 * expected);
        penalty.backward();
        Assert.All(guarded.Adapters.Values, a => Assert.True(a.LoraB.grad is not null && a.LoraB.grad.abs().max().item<double>() > 0, $"{a.LayerName}: no gradient"));
        Assert.Throws<ArgumentException>(() => new AsftRegularizer(guarded.Adapters, baseWeights, baseWeights, 1.0));
    }

    /// <summary>1,000 guarded Adam steps must not grow native memory: every temporary lives in a dispose scope.</summary>
    [Fact]
    public void ThousandStepsDoNotGrowResidentMemory()
    {
        using var scope = NewDisposeScope();
        var model = new TinyTransformer();
        using var guarded = GuardedModelInvariantTests.AttachGuardSpace(model);
        using var optimizer = guarded.WrapOptimizer(optim.Adam(guarded.TrainableParameters(), 1e-3));
        var tokens = TinyTransformer.Tokens(8, 6, 1);
        var targets = TinyTransformer.Tokens(8, 6, 2).reshape(-1);
        void Step()
        {
            using var s = NewDisposeScope();
            optimizer.zero_grad();
            nn.functional.cross_entropy(model.call(tokens).reshape(-1, TinyTransformer.Vocab), targets).backward();
            optimizer.step();
        }

        for (var i = 0; i < 100; i++)
        {
            Step(); // warm-up: allocator pools, optimizer state
        }

        var live = DisposeScopeManager.Statistics.ThreadTotalLiveCount;
        var before = ResidentBytes();
        for (var i = 0; i < 1000; i++)
        {
            Step();
        }

        var after = ResidentBytes();
        var growth = after - before;
        output.WriteLine($"RSS before {before / 1048576.0:F1} MiB, after 1000 steps {after / 1048576.0:F1} MiB, growth {growth / 1048576.0:F2} MiB; live tensors {live} -> {DisposeScopeManager.Statistics.ThreadTotalLiveCount}");
        Assert.Equal(live, DisposeScopeManager.Statistics.ThreadTotalLiveCount);
        Assert.True(growth < 32L * 1024 * 1024, $"resident memory grew by {growth / 1048576.0:F1} MiB over 1000 steps");
    }

    private static long ResidentBytes()
    {
        GC.Collect();
        GC.WaitForPendingFinalizers();
        GC.Collect();
        using var process = Process.GetCurrentProcess();
        process.Refresh();
        return process.WorkingSet64;
    }
}
