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
/// </summary>
public sealed class GuardedOptimizer : optim.Optimizer
{
    private readonly GuardedModel _guarded;

    /// <summary>Wraps <paramref name="inner"/>; prefer <see cref="GuardedModel.WrapOptimizer"/>.</summary>
    /// <exception cref="ArgumentException">The inner optimizer does not hold the guarded A factors (built before a <c>.to()</c>, for example).</exception>
    public GuardedOptimizer(optim.Optimizer inner, GuardedModel guarded)
        : base(IntPtr.Zero)
    {
        Inner = inner ?? throw new ArgumentNullException(nameof(inner));
        _guarded = guarded ?? throw new ArgumentNullException(nameof(guarded));
        // Parameters replaced by .to() are disposed: they count as missing.
        var given = inner.parameters().Where(p => !p.IsInvalid).Select(p => p.Handle).ToHashSet();
        var missing = guarded.AdapterList.Where(a => !a.IsFrozen && !given.Contains(a.LoraA.Handle)).Select(a => a.LayerName).ToList();
        if (missing.Count > 0)
        {
            throw new ArgumentException(
                $"The inner optimizer does not hold the A factor of {string.Join(", ", missing.Take(5))}{(missing.Count > 5 ? ", ..." : string.Empty)}. " +
                "Build it on guarded.TrainableParameters() (again after any .to(), which replaces parameter objects).", nameof(inner));
        }
    }

    /// <summary>The wrapped optimizer (for saving its state, for example).</summary>
    public optim.Optimizer Inner { get; }

    /// <inheritdoc />
    public override Tensor step(Func<Tensor>? closure = null)
    {
        Tensor loss;
        if (closure is null)
        {
            _guarded.AfterBackward();
            loss = Inner.step();
        }
        else
        {
            // Closure optimizers (LBFGS) re-evaluate the loss: project after each backward they run.
            loss = Inner.step(() =>
            {
                var l = closure();
                _guarded.AfterBackward();
                return l;
            });
        }

        _guarded.AfterStep();
        return loss;
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
