using GuardSpace.Tests.Adapters;
using GuardSpace.Tests.TestUtilities;
using GuardSpace.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace GuardSpace.Tests.Training;

/// <summary>
/// Schedulers that cycle momentum work through the GuardedOptimizer (issue 10, item 8). The reference for each schedule
/// is the same scheduler driving the same kind of optimizer unwrapped: through the wrapper, the inner optimizer must get
/// exactly the learning rates and momenta (or Adam's beta1) it would get on its own.
/// </summary>
public class MomentumSchedulerTests
{
    private const int Steps = 8;

    [Fact]
    public void CyclicLrCyclesTheMomentumOfAnInnerSgd()
    {
        using var scope = NewDisposeScope();
        var model = new TinyTransformer();
        using var guarded = GuardedModelInvariantTests.AttachGuardSpace(model);
        var inner = optim.SGD(guarded.TrainableParameters(), 0.01, momentum: 0.9);
        using var optimizer = guarded.WrapOptimizer(inner);
        var scheduler = optim.lr_scheduler.CyclicLR(optimizer, 0.001, 0.01, step_size_up: 3, cycle_momentum: true, base_momentum: 0.8, max_momentum: 0.9);
        var wrapped = Schedule(inner, Momentum, () => scheduler.step(), step => GuardedModelInvariantTests.TrainStep(model, optimizer, step));

        using var bare = optim.SGD(new TinyTransformer().parameters(), 0.01, momentum: 0.9);
        var bareScheduler = optim.lr_scheduler.CyclicLR(bare, 0.001, 0.01, step_size_up: 3, cycle_momentum: true, base_momentum: 0.8, max_momentum: 0.9);
        var reference = Schedule(bare, Momentum, () => bareScheduler.step(), _ => { });

        // (TorchSharp 0.107's CyclicLR adds its momentum swing to max_momentum instead of subtracting it, so the values
        // leave [base, max]; that is the scheduler's arithmetic, the same with and without the wrapper.)
        AssertCycles(reference, wrapped);

        // The wrapper's own momentum is the inner optimizer's default momentum, both ways.
        Assert.Equal(inner.Momentum, optimizer.Momentum);
        optimizer.Momentum = 0.5;
        Assert.Equal(0.5, inner.Momentum);
        Assert.All(inner.ParamGroups, g => Assert.Equal(0.5, Momentum(g))); // every existing group, not only the default
    }

    [Fact]
    public void OneCycleLrCyclesBeta1OfAnInnerAdam()
    {
        using var scope = NewDisposeScope();
        var model = new TinyTransformer();
        using var guarded = GuardedModelInvariantTests.AttachGuardSpace(model);
        var inner = optim.Adam(guarded.TrainableParameters(), 0.01);
        using var optimizer = guarded.WrapOptimizer(inner);
        var scheduler = optim.lr_scheduler.OneCycleLR(optimizer, 0.01, total_steps: Steps + 1, cycle_momentum: true);
        var wrapped = Schedule(inner, Beta1, () => scheduler.step(), step => GuardedModelInvariantTests.TrainStep(model, optimizer, step));

        using var bare = optim.Adam(new TinyTransformer().parameters(), 0.01);
        var bareScheduler = optim.lr_scheduler.OneCycleLR(bare, 0.01, total_steps: Steps + 1, cycle_momentum: true);
        var reference = Schedule(bare, Beta1, () => bareScheduler.step(), _ => { });

        AssertCycles(reference, wrapped);
        var betas = wrapped.Select(s => s.Momentum).ToList();
        Assert.InRange(betas.Min(), 0.85 - 1e-12, 0.95 + 1e-12);
        // One cycle: beta1 falls during the warm-up and rises after it (its minimum is inside the run, not at an end).
        Assert.InRange(betas.IndexOf(betas.Min()), 1, Steps - 2);
        Assert.True(betas[^1] > betas.Min() + 0.01, string.Join(", ", betas));
    }

    [Fact]
    public void CyclingTheMomentumOfAnInnerAdamWithCyclicLrIsExplained()
    {
        using var scope = NewDisposeScope();
        var model = new TinyTransformer();
        using var guarded = GuardedModelInvariantTests.AttachGuardSpace(model);
        var inner = optim.Adam(guarded.TrainableParameters(), 0.01);
        using var optimizer = guarded.WrapOptimizer(inner);
        var ex = Assert.Throws<InvalidOperationException>(() => optim.lr_scheduler.CyclicLR(optimizer, 0.001, 0.01, cycle_momentum: true));
        Assert.Contains("Adam", ex.Message);
        Assert.Contains("cycle_momentum: false", ex.Message);
        Assert.Contains("has no momentum", Assert.Throws<InvalidOperationException>(() => optimizer.Momentum).Message);

        // Without momentum cycling the same scheduler drives the learning rate as it drives an unwrapped Adam's.
        var scheduler = optim.lr_scheduler.CyclicLR(optimizer, 0.001, 0.01, step_size_up: 2, cycle_momentum: false);
        var wrapped = Schedule(inner, Beta1, () => scheduler.step(), step => GuardedModelInvariantTests.TrainStep(model, optimizer, step));
        using var bare = optim.Adam(new TinyTransformer().parameters(), 0.01);
        var bareScheduler = optim.lr_scheduler.CyclicLR(bare, 0.001, 0.01, step_size_up: 2, cycle_momentum: false);
        var reference = Schedule(bare, Beta1, () => bareScheduler.step(), _ => { });
        Assert.Equal(reference, wrapped);
        Assert.True(wrapped.Select(s => s.Lr).Distinct().Count() > 2, "the learning rate cycles");
    }

    private static double Momentum(optim.ILearningRateController group) => ((optim.IMomentum)group).Momentum;

    private static double Beta1(optim.ILearningRateController group) => ((optim.IBetas)group).Betas.Item1;

    /// <summary>
    /// Runs <see cref="Steps"/> training steps, each followed by a scheduler step, and records the inner optimizer's first
    /// group after both: after the training step too, so that a wrapper that changed the values in step() would show.
    /// </summary>
    private static List<(double Lr, double Momentum)> Schedule(optim.Optimizer inner, Func<optim.ILearningRateController, double> momentum, Action schedulerStep, Action<int> trainStep)
    {
        var seen = new List<(double Lr, double Momentum)>();
        void See()
        {
            var group = inner.ParamGroups.First();
            seen.Add((group.LearningRate, momentum(group)));
        }

        for (var step = 0; step < Steps; step++)
        {
            trainStep(step);
            See();
            schedulerStep();
            See();
        }

        return seen;
    }

    /// <summary>The wrapped run got the reference's schedule, step for step, and that schedule does cycle.</summary>
    private static void AssertCycles(List<(double Lr, double Momentum)> reference, List<(double Lr, double Momentum)> wrapped)
    {
        Assert.Equal(reference, wrapped);
        Assert.True(wrapped.Select(s => s.Lr).Distinct().Count() > 2, "learning rates: " + string.Join(", ", wrapped.Select(s => s.Lr)));
        Assert.True(wrapped.Select(s => s.Momentum).Distinct().Count() > 2, "momenta: " + string.Join(", ", wrapped.Select(s => s.Momentum)));
    }
}
