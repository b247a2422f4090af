using GuardSpace.Adapters;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace GuardSpace.Training;

/// <summary>
/// An optimizer hook for any TorchSharp optimizer (SGD, Adam, AdamW, ...): <c>step()</c> projects the gradient of every
/// guarded A onto its null space, runs the inner optimizer, then re-projects A in place. Everything else (zero_grad,
/// parameter groups, learning-rate schedulers) goes to the inner optimizer unchanged. TorchSharp has no optimizer hooks,
/// so this wrapper is the hook: call <c>step()</c> on it, not on the inner optimizer.
/// It implements <see cref="optim.IMomentum"/>, because TorchSharp's CyclicLR and OneCycleLR check the optimizer for it
/// before cycling momentum (<c>cycle_momentum: true</c>): the momentum is the inner optimizer's (SGD, RMSProp), and
/// OneCycleLR cycles an inner Adam's beta1 as it would unwrapped.
/// </summary>
public sealed class GuardedOptimizer : optim.Optimizer, optim.IMomentum
{
    private readonly GradientGuard _guard;

    /// <summary>Wraps <paramref name="inner"/> around <paramref name="guard"/>; users get one from <c>GuardedModel.WrapOptimizer</c>.</summary>
    /// <exception cref="ArgumentException">The inner optimizer does not hold the guarded A factors (built before a <c>.to()</c>, for example).</exception>
    internal GuardedOptimizer(optim.Optimizer inner, GradientGuard guard)
        : base(IntPtr.Zero)
    {
        Inner = inner ?? throw new ArgumentNullException(nameof(inner));
        _guard = guard;
        // Parameters replaced by .to() are disposed: they count as missing.
        var given = inner.parameters().Where(p => !p.IsInvalid).Select(p => p.Handle).ToHashSet();
        var missing = guard.Adapters.Where(a => !a.IsFrozen && !given.Contains(a.LoraA.Handle)).Select(a => a.LayerName).ToList();
        if (missing.Count > 0)
        {
            throw new ArgumentException(
                $"The inner optimizer does not hold the A factor of {string.Join(", ", missing.Take(5))}{(missing.Count > 5 ? ", ..." : string.Empty)}. " +
                "Build it on guarded.TrainableParameters() (again after any .to(), which replaces parameter objects).", nameof(inner));
        }
    }

    /// <summary>The wrapped optimizer (for saving its state, for example).</summary>
    public optim.Optimizer Inner { get; }

    /// <summary>The inner optimizer's momentum (SGD, RMSProp); setting it sets every parameter group's.</summary>
    /// <exception cref="InvalidOperationException">The inner optimizer has no momentum (Adam, AdamW, ...).</exception>
    public double Momentum
    {
        get => InnerMomentum.Momentum;
        set
        {
            // The optimizer's own Momentum is only the default for groups added later: set every existing group too.
            InnerMomentum.Momentum = value;
            foreach (var group in Inner.ParamGroups.OfType<optim.IMomentum>())
            {
                group.Momentum = value;
            }
        }
    }

    private optim.IMomentum InnerMomentum => Inner as optim.IMomentum ?? throw new InvalidOperationException(
        $"The optimizer inside the GuardedOptimizer ({Inner.GetType().Name}) has no momentum. Use an inner optimizer with momentum (SGD, RMSProp), " +
        "or, with a scheduler, pass cycle_momentum: false (OneCycleLR cycles Adam's beta1 instead).");

    /// <inheritdoc />
    public override Tensor step(Func<Tensor>? closure = null)
    {
        Tensor loss;
        if (closure is null)
        {
            _guard.AfterBackward();
            loss = Inner.step();
        }
        else
        {
            // Closure optimizers (LBFGS) re-evaluate the loss: project after each backward they run.
            loss = Inner.step(() =>
            {
                var l = closure();
                _guard.AfterBackward();
                return l;
            });
        }

        _guard.AfterStep();
        return loss;
    }

    /// <inheritdoc />
    public override void zero_grad() => Inner.zero_grad();

    /// <inheritdoc />
    public override IEnumerable<Parameter> parameters() => Inner.parameters();

    /// <summary>
    /// The inner optimizer's parameter groups. Groups without momentum (Adam's, for example) are shown through a view that
    /// passes the learning rate and betas on and gives a clear error for momentum; <c>Inner.ParamGroups</c> has the
    /// groups themselves.
    /// </summary>
    public override IEnumerable<optim.ILearningRateController> ParamGroups =>
        Inner.ParamGroups.Select(g => g is optim.IMomentum ? g : new ParamGroupWithoutMomentum(g, Inner.GetType().Name));

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
