using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace GuardSpace.Behaviour;

/// <summary>
/// An optimizer whose <c>step()</c> adds the <see cref="RefusalConstraint"/>'s weighted refusal gradient to the gradients
/// already accumulated by the task loss's backward, then runs the inner optimizer (for GuardSpace adapters a
/// <see cref="Training.GuardedOptimizer"/>, whose projections then act on the summed gradient). Everything else (zero_grad,
/// parameter groups, schedulers) goes to the inner optimizer unchanged. Build it with <see cref="RefusalConstraint.Wrap"/>.
/// </summary>
public sealed class RefusalConstrainedOptimizer : optim.Optimizer, optim.IMomentum
{
    internal RefusalConstrainedOptimizer(optim.Optimizer inner, RefusalConstraint constraint)
        : base(IntPtr.Zero)
    {
        Inner = inner ?? throw new ArgumentNullException(nameof(inner));
        Constraint = constraint ?? throw new ArgumentNullException(nameof(constraint));
    }

    /// <summary>The wrapped optimizer.</summary>
    public optim.Optimizer Inner { get; }

    /// <summary>The constraint whose multiplier weighs the refusal loss.</summary>
    public RefusalConstraint Constraint { get; }

    /// <summary>The inner optimizer's momentum (for schedulers that cycle it).</summary>
    /// <exception cref="InvalidOperationException">The inner optimizer has no momentum.</exception>
    public double Momentum
    {
        get => InnerMomentum.Momentum;
        set => InnerMomentum.Momentum = value;
    }

    private optim.IMomentum InnerMomentum => Inner as optim.IMomentum ?? throw new InvalidOperationException(
        $"The optimizer inside the RefusalConstrainedOptimizer ({Inner.GetType().Name}) has no momentum; with a scheduler, pass cycle_momentum: false.");

    /// <inheritdoc />
    public override Tensor step(Func<Tensor>? closure = null)
    {
        Constraint.BeginStep();
        if (closure is null)
        {
            Constraint.AddRefusalGradient();
            return Inner.step();
        }

        // Closure optimizers (LBFGS) re-evaluate the loss: add the refusal term after each backward they run.
        return Inner.step(() =>
        {
            var loss = closure();
            Constraint.AddRefusalGradient();
            return loss;
        });
    }

    /// <inheritdoc />
    public override void zero_grad() => Inner.zero_grad();

    /// <inheritdoc />
    public override IEnumerable<Parameter> parameters() => Inner.parameters();

    /// <inheritdoc />
    public override IEnumerable<optim.ILearningRateController> ParamGroups => Inner.ParamGroups;

    /// <inheritdoc />
    public override void add_param_group(ParamGroup param_group) => Inner.add_param_group(param_group);

    /// <inheritdoc />
    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            Inner.Dispose();
        }

        base.Dispose(disposing);
    }
}
