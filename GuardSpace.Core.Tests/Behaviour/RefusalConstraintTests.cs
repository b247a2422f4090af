using GuardSpace.Adapters;
using GuardSpace.Behaviour;
using GuardSpace.Tests.Adapters;
using GuardSpace.Tests.TestUtilities;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace GuardSpace.Tests.Behaviour;

public class RefusalConstraintTests
{
    /// <summary>A validation loss that returns the scripted values in order (the first is the baseline).</summary>
    private static Func<double> Script(params double[] values)
    {
        var i = 0;
        return () => values[Math.Min(i++, values.Length - 1)];
    }

    private static RefusalObjective Scripted(params double[] validation) => new()
    {
        BatchLoss = () => tensor(0.0, requires_grad: true),
        ValidationLoss = Script(validation),
    };

    [Fact]
    public void MultiplierFollowsTheProportionalIntegralLaw()
    {
        // Baseline 0.1, tolerance 0.05: target 0.15. Errors in tolerances: -1, 2, 2, -1, -1, -1, -1.
        var progress = new List<RefusalConstraintProgress>();
        var constraint = new RefusalConstraint(
            Scripted(0.1, 0.1, 0.25, 0.25, 0.1, 0.1, 0.1, 0.1),
            new RefusalConstraintOptions { Tolerance = 0.05, IntegralGain = 1, ProportionalGain = 1, EvaluateEvery = 1 },
            progress: new SynchronousProgress<RefusalConstraintProgress>(progress.Add));
        Assert.Equal(0.1, constraint.Baseline);
        Assert.Equal(0.15, constraint.Target, 15);
        for (var i = 0; i < 7; i++)
        {
            constraint.AfterBackward();
        }

        // Integral: 0, 2, 4, 3, 2, 1, 0; multiplier = clamp(I + e): 0, 4, 6, 2, 1, 0, 0.
        Assert.Equal([0, 4, 6, 2, 1, 0, 0], progress.Select(p => Math.Round(p.Multiplier, 9)));
        Assert.Equal([0, 1, 2, 0, 0, 0, 0], progress.Select(p => p.Violations));
        Assert.Equal([0, 1, 2, 3, 4, 5, 6], progress.Select(p => p.Step));
        Assert.Equal(7, constraint.Steps);
    }

    [Fact]
    public void EvaluatesEveryNStepsAndReadsTheRefusalRateWhenDue()
    {
        var rates = 0;
        var progress = new List<RefusalConstraintProgress>();
        var constraint = new RefusalConstraint(
            new RefusalObjective { BatchLoss = () => tensor(0.0, requires_grad: true), ValidationLoss = () => 1.0, ValidationRefusalRate = () => ++rates / 10.0 },
            new RefusalConstraintOptions { EvaluateEvery = 3, RefusalRateEvery = 2 },
            progress: new SynchronousProgress<RefusalConstraintProgress>(progress.Add));
        for (var i = 0; i < 10; i++)
        {
            constraint.AfterBackward();
        }

        Assert.Equal([0, 3, 6, 9], progress.Select(p => p.Step));
        Assert.Equal([0.1, null, 0.2, null], progress.Select(p => p.RefusalRate));
    }

    /// <summary>
    /// The toy problem: task loss (t - 3)^2, refusal loss t^2, aligned t = 0 and tolerance 0.25, so the constraint is |t| &lt;= 0.5.
    /// Its KKT point is t = 0.5 with multiplier (3 - t) / t = 5. Then the task stops pulling and the multiplier must decay to 0.
    /// </summary>
    [Fact]
    public void ControllerRaisesTheMultiplierToTheKktValueAndLowersItWhenTheConstraintHolds()
    {
        using var scope = NewDisposeScope();
        var t = new Parameter(tensor(0.0, dtype: ScalarType.Float64));
        var constraint = new RefusalConstraint(
            new RefusalObjective { BatchLoss = () => t.square(), ValidationLoss = () => t.square().item<double>() },
            new RefusalConstraintOptions { Tolerance = 0.25, EvaluateEvery = 1, IntegralGain = 0.2, ProportionalGain = 0.2 });
        using var optimizer = constraint.Wrap(optim.SGD([t], 0.01));
        TrainToy(optimizer, t, taskTarget: 3.0, steps: 3000);
        Assert.InRange(t.item<double>(), 0.45, 0.56);
        Assert.InRange(constraint.Multiplier, 4.0, 6.0);
        Assert.True(constraint.Latest!.Value.ValidationLoss < 0.25 * 1.25);

        TrainToy(optimizer, t, taskTarget: 0.0, steps: 500); // the task now agrees with the constraint: the multiplier must fall to 0
        Assert.Equal(0, constraint.Multiplier);
        Assert.False(constraint.Latest!.Value.IsViolated);
    }

    /// <summary>Minimises the toy task loss (t - taskTarget)^2 through <paramref name="optimizer"/>.</summary>
    private static void TrainToy(optim.Optimizer optimizer, Parameter t, double taskTarget, int steps)
    {
        for (var i = 0; i < steps; i++)
        {
            using var stepScope = NewDisposeScope();
            optimizer.zero_grad();
            (t - taskTarget).square().backward();
            optimizer.step();
        }
    }

    [Fact]
    public void WithoutTheConstraintTheToyProblemLeavesTheBound()
    {
        // The guard for the test above: the same loop with the multiplier held at 0 ends far outside |t| <= 0.5.
        using var scope = NewDisposeScope();
        var t = new Parameter(tensor(0.0, dtype: ScalarType.Float64));
        var constraint = new RefusalConstraint(
            new RefusalObjective { BatchLoss = () => t.square(), ValidationLoss = () => t.square().item<double>() },
            new RefusalConstraintOptions { Tolerance = 0.25, IntegralGain = 0, ProportionalGain = 0 });
        using var optimizer = constraint.Wrap(optim.SGD([t], 0.01));
        TrainToy(optimizer, t, taskTarget: 3.0, steps: 3000);
        Assert.InRange(t.item<double>(), 2.9, 3.1);
        Assert.Equal(0, constraint.Multiplier);
    }

    [Fact]
    public void CombinedGradientEqualsTheSumOfTheTaskAndWeightedRefusalGradients()
    {
        using var scope = NewDisposeScope();
        manual_seed(5);
        var model = Linear(6, 4, dtype: ScalarType.Float64);
        var xTask = randn(5, 6, dtype: ScalarType.Float64);
        var xRefusal = randn(3, 6, dtype: ScalarType.Float64);
        Tensor TaskLoss() => model.call(xTask).square().mean();
        Tensor RefusalLoss() => (model.call(xRefusal) - 1).square().mean();

        // Validation at exactly the target (baseline 0.2 + tolerance 0.05) keeps the multiplier at its initial 2.5.
        var constraint = new RefusalConstraint(
            new RefusalObjective { BatchLoss = RefusalLoss, ValidationLoss = Script(0.2, 0.25) },
            new RefusalConstraintOptions { InitialMultiplier = 2.5 });

        var expected = model.parameters().Select(p => p.detach().clone()).ToList();
        var reference = autograd.grad([TaskLoss() + (2.5 * RefusalLoss())], [.. model.parameters()]);
        using var optimizer = constraint.Wrap(optim.SGD(model.parameters(), 1.0));
        optimizer.zero_grad();
        TaskLoss().backward();
        optimizer.step();

        Assert.Equal(2.5, constraint.Multiplier);
        foreach (var (p, (before, g)) in model.parameters().Zip(expected.Zip(reference)))
        {
            // SGD with lr 1: the step is minus the summed gradient.
            Assert.True(allclose(before - g, p, rtol: 1e-12, atol: 1e-14), "the step did not use task + lambda * refusal gradients");
        }
    }

    [Fact]
    public void NoRefusalPassWhileTheMultiplierIsZero()
    {
        var calls = 0;
        var constraint = new RefusalConstraint(new RefusalObjective
        {
            BatchLoss = () => { calls++; return tensor(1.0, requires_grad: true); },
            ValidationLoss = () => 0.0,
        });
        for (var i = 0; i < 25; i++)
        {
            constraint.AfterBackward();
        }

        Assert.Equal(0, calls);
        Assert.Equal(0, constraint.Multiplier);
    }

    [Fact]
    public void WrappingTheGuardedOptimizerKeepsTheAdapterInItsNullSpace()
    {
        using var scope = NewDisposeScope();
        var model = new TinyTransformer();
        using var guarded = GuardedModelInvariantTests.AttachGuardSpace(model);
        var before = GuardedModelInvariantTests.LayerOutputsOnHarmfulPrompts(model, guarded);
        var refusalTokens = TinyTransformer.Tokens(4, 6, 77);
        Tensor RefusalLoss() => functional.cross_entropy(model.call(refusalTokens).reshape(-1, TinyTransformer.Vocab), TinyTransformer.Tokens(4, 6, 78).reshape(-1));
        var constraint = new RefusalConstraint(
            new RefusalObjective { BatchLoss = RefusalLoss, ValidationLoss = Script(1.0, 9.0) }, // violated: the multiplier is positive
            new RefusalConstraintOptions { EvaluateEvery = 1000 });
        using var optimizer = constraint.Wrap(guarded.WrapOptimizer(optim.Adam(guarded.TrainableParameters(), 1e-2)));
        for (var step = 0; step < 20; step++)
        {
            GuardedModelInvariantTests.TrainStep(model, optimizer, step);
        }

        Assert.True(constraint.Multiplier > 0);
        var after = GuardedModelInvariantTests.LayerOutputsOnHarmfulPrompts(model, guarded);
        foreach (var (layer, y) in before)
        {
            var rel = (after[layer] - y).norm().item<double>() / y.norm().item<double>();
            Assert.True(rel < 1e-8, $"{layer}: harmful outputs moved by {rel:G3}");
        }
    }

    public static TheoryData<InitializationMethod, string> MethodsAndOptimizers()
    {
        var data = new TheoryData<InitializationMethod, string>();
        foreach (var method in Enum.GetValues<InitializationMethod>())
        {
            foreach (var optimizer in new[] { "sgd", "adam", "adamw" })
            {
                data.Add(method, optimizer);
            }
        }

        return data;
    }

    [Theory]
    [MemberData(nameof(MethodsAndOptimizers))]
    public void TrainsEveryInitialisationUnderEveryWrappedOptimizer(InitializationMethod method, string optimizerKind)
    {
        using var scope = NewDisposeScope();
        var model = new TinyTransformer();
        using var guarded = GuardedModelInvariantTests.AttachGuardSpace(model, method);
        var before = GuardedModelInvariantTests.LayerOutputsOnHarmfulPrompts(model, guarded);
        var factors = guarded.TrainableParameters().Select(p => p.detach().clone()).ToList();
        var refusalTokens = TinyTransformer.Tokens(4, 6, 77);
        var batches = 0;
        Tensor RefusalLoss()
        {
            batches++;
            return functional.cross_entropy(model.call(refusalTokens).reshape(-1, TinyTransformer.Vocab), TinyTransformer.Tokens(4, 6, 78).reshape(-1));
        }

        var constraint = new RefusalConstraint(
            new RefusalObjective { BatchLoss = RefusalLoss, ValidationLoss = Script(1.0, 1.1) }, // one tolerance over: multiplier 2, then 3
            new RefusalConstraintOptions { EvaluateEvery = 5 });
        using var optimizer = constraint.Wrap(guarded.WrapOptimizer(GuardedModelInvariantTests.MakeOptimizer(optimizerKind, guarded.TrainableParameters())));
        for (var step = 0; step < 10; step++)
        {
            GuardedModelInvariantTests.TrainStep(model, optimizer, step);
        }

        Assert.Equal(10, batches); // one refusal batch per step while the multiplier is positive
        Assert.True(guarded.TrainableParameters().Zip(factors).Any(p => !allclose(p.First, p.Second)), "no adapter factor moved");
        if (method.UsesProjector())
        {
            // The refusal gradient is projected with the task's: the harmful outputs stay put.
            var after = GuardedModelInvariantTests.LayerOutputsOnHarmfulPrompts(model, guarded);
            Assert.All(before, kv => Assert.True((after[kv.Key] - kv.Value).norm().item<double>() <= 1e-8 * kv.Value.norm().item<double>(), kv.Key));
        }
    }

    [Fact]
    public void WarnsOnceWhenViolatedForLong()
    {
        var logger = new RecordingLogger();
        var constraint = new RefusalConstraint(
            Scripted(0.0, 1.0), new RefusalConstraintOptions { EvaluateEvery = 1, WarnAfterViolations = 3, MaxMultiplier = 1 }, logger);
        for (var i = 0; i < 8; i++)
        {
            constraint.AfterBackward();
        }

        var warning = Assert.Single(logger.Warnings);
        Assert.Contains("violated for 3 evaluations", warning, StringComparison.Ordinal);
    }

    [Fact]
    public void EmptyValidationSplitIsRefusedAtCreation()
    {
        var ex = Assert.Throws<ArgumentException>(() => new RefusalConstraint(Scripted(double.NaN)));
        Assert.Contains("at least one (prompt, refusal) pair", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void MismatchedRefusalLossesGetClearErrors()
    {
        // The first step evaluates at the baseline and decays the multiplier; start it high enough to stay positive.
        var bigStart = new RefusalConstraintOptions { InitialMultiplier = 10, EvaluateEvery = 100 };
        var nonScalar = new RefusalConstraint(new RefusalObjective { BatchLoss = () => ones(3, requires_grad: true), ValidationLoss = () => 0.0 }, bigStart);
        Assert.Contains("scalar", Assert.Throws<InvalidOperationException>(nonScalar.AfterBackward).Message, StringComparison.Ordinal);

        var noGrad = new RefusalConstraint(new RefusalObjective { BatchLoss = () => tensor(1.0), ValidationLoss = () => 0.0 }, bigStart);
        Assert.Contains("requires_grad", Assert.Throws<InvalidOperationException>(noGrad.AfterBackward).Message, StringComparison.Ordinal);

        var diverged = new RefusalConstraint(Scripted(0.1, double.PositiveInfinity));
        Assert.Contains("diverged", Assert.Throws<InvalidOperationException>(diverged.AfterBackward).Message, StringComparison.Ordinal);
    }

    [Fact]
    public void OptionsListEveryInvalidValue()
    {
        var ex = Assert.Throws<ArgumentException>(() => new RefusalConstraint(
            Scripted(0.1), new RefusalConstraintOptions { Tolerance = 0, EvaluateEvery = 0, MaxMultiplier = 1, InitialMultiplier = 2 }));
        Assert.Contains("RefusalConstraintOptions.Tolerance", ex.Message, StringComparison.Ordinal);
        Assert.Contains("RefusalConstraintOptions.EvaluateEvery", ex.Message, StringComparison.Ordinal);
        Assert.Contains("RefusalConstraintOptions.InitialMultiplier", ex.Message, StringComparison.Ordinal);
        Assert.Equal("Tolerance", ex.ParamName);
    }
}
