using GuardSpace.Tests.Adapters;
using GuardSpace.Tests.TestUtilities;
using GuardSpace.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace GuardSpace.Tests.Training;

/// <summary>Schedulers that cycle momentum work through the GuardedOptimizer (issue 10, item 8).</summary>
public class MomentumSchedulerTests
{
    [Fact]
    public void CyclicLrCyclesTheMomentumOfAnInnerSgd()
    {
        using var scope = NewDisposeScope();
        var model = new TinyTransformer();
        using var guarded = GuardedModelInvariantTests.AttachGuardSpace(model);
        var inner = optim.SGD(guarded.TrainableParameters(), 0.01, momentum: 0.9);
        using var optimizer = guarded.WrapOptimizer(inner);
        var scheduler = optim.lr_scheduler.CyclicLR(optimizer, 0.001, 0.01, step_size_up: 4, cycle_momentum: true, base_momentum: 0.8, max_momentum: 0.9);
        var momenta = new List<double>();
        for (var step = 0; step < 6; step++)
        {
            GuardedModelInvariantTests.TrainStep(model, optimizer, step);
            scheduler.step();
            momenta.Add(((optim.IMomentum)inner.ParamGroups.First()).Momentum);
        }

        Assert.True(momenta.Distinct().Count() > 2, "momenta: " + string.Join(", ", momenta));
        // (TorchSharp 0.107's CyclicLR adds its momentum swing to max_momentum instead of subtracting it, so the values
        // leave [base, max]; that is the scheduler's arithmetic, not the wrapper's.)
        Assert.Equal(inner.Momentum, optimizer.Momentum);
        optimizer.Momentum = 0.5;
        Assert.Equal(0.5, inner.Momentum);
    }

    [Fact]
    public void OneCycleLrCyclesBeta1OfAnInnerAdam()
    {
        using var scope = NewDisposeScope();
        var model = new TinyTransformer();
        using var guarded = GuardedModelInvariantTests.AttachGuardSpace(model);
        var inner = optim.Adam(guarded.TrainableParameters(), 0.01);
        using var optimizer = guarded.WrapOptimizer(inner);
        var scheduler = optim.lr_scheduler.OneCycleLR(optimizer, 0.01, total_steps: 10, cycle_momentum: true);
        var betas = new List<double>();
        for (var step = 0; step < 6; step++)
        {
            GuardedModelInvariantTests.TrainStep(model, optimizer, step);
            scheduler.step();
            betas.Add(((optim.IBetas)inner.ParamGroups.First()).Betas.Item1);
        }

        Assert.True(betas.Distinct().Count() > 2, string.Join(", ", betas));
        Assert.InRange(betas.Min(), 0.85 - 1e-12, 0.95 + 1e-12);
    }

    [Fact]
    public void CyclingTheMomentumOfAnInnerAdamWithCyclicLrIsExplained()
    {
        using var scope = NewDisposeScope();
        var model = new TinyTransformer();
        using var guarded = GuardedModelInvariantTests.AttachGuardSpace(model);
        using var optimizer = guarded.WrapOptimizer(optim.Adam(guarded.TrainableParameters(), 0.01));
        var ex = Assert.Throws<InvalidOperationException>(() => optim.lr_scheduler.CyclicLR(optimizer, 0.001, 0.01, cycle_momentum: true));
        Assert.Contains("Adam", ex.Message);
        Assert.Contains("cycle_momentum: false", ex.Message);
        Assert.Contains("has no momentum", Assert.Throws<InvalidOperationException>(() => optimizer.Momentum).Message);

        // Without momentum cycling the same scheduler drives the learning rate as usual.
        var scheduler = optim.lr_scheduler.CyclicLR(optimizer, 0.001, 0.01, step_size_up: 2, cycle_momentum: false);
        GuardedModelInvariantTests.TrainStep(model, optimizer, 0);
        scheduler.step();
        Assert.NotEqual(0.001, optimizer.ParamGroups.First().LearningRate);
    }
}
