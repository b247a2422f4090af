using GuardSpace.Diagnostics;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using TorchSharp;
using static TorchSharp.torch;

namespace GuardSpace.Behaviour;

/// <summary>
/// Keeps the aligned model's refusals while it learns a task: training minimises the task loss subject to
/// <c>L_refusal_val(theta) &lt;= L_refusal_val(theta_0) + tolerance</c>, through the Lagrangian
/// <c>L_task + lambda L_refusal</c> whose multiplier lambda a proportional-integral controller adapts from the validation
/// loss (see <see cref="RefusalConstraintOptions"/>): it rises while the constraint is violated and decays while it holds,
/// so nobody hand-tunes a replay weight. It works with any model and any optimizer, with or without GuardSpace adapters:
/// <see cref="Wrap"/> an optimizer (a <see cref="Training.GuardedOptimizer"/> too) and the loop stays as it was; or call
/// <see cref="AfterBackward"/> after the task loss's backward in a hand-written loop.
/// </summary>
/// <remarks>
/// Cost: one forward and backward of <see cref="RefusalObjective.BatchLoss"/> per step while the multiplier is positive
/// (none while it is 0), plus one no-grad pass of the validation split every <see cref="RefusalConstraintOptions.EvaluateEvery"/>
/// steps. Create the constraint on the aligned model, before training: its baseline is measured then.
/// </remarks>
public sealed class RefusalConstraint
{
    private readonly RefusalObjective _objective;
    private readonly RefusalConstraintOptions _options;
    private readonly ILogger _logger;
    private readonly IProgress<RefusalConstraintProgress>? _progress;
    private double _integral;
    private int _evaluations;
    private int _violations;

    /// <summary>Creates the constraint and measures its baseline, the validation loss of the model as it is now (the aligned one).</summary>
    /// <param name="objective">The refusal callbacks.</param>
    /// <param name="options">Tolerance and controller; null for the defaults. Copied: later changes to it have no effect.</param>
    /// <param name="logger">Receives a warning when the constraint stays violated, and every evaluation at debug level.</param>
    /// <param name="progress">The behaviour monitor: one report per evaluation.</param>
    /// <exception cref="ArgumentException">Invalid options, a missing callback, or a baseline that is not a finite loss &gt;= 0.</exception>
    public RefusalConstraint(RefusalObjective objective, RefusalConstraintOptions? options = null, ILogger? logger = null, IProgress<RefusalConstraintProgress>? progress = null)
    {
        ArgumentNullException.ThrowIfNull(objective);
        if (objective.BatchLoss is null || objective.ValidationLoss is null)
        {
            throw new ArgumentException("RefusalObjective needs both BatchLoss and ValidationLoss.", nameof(objective));
        }

        _options = options?.Clone() ?? new RefusalConstraintOptions();
        _options.Validate();
        _objective = objective;
        _logger = logger ?? NullLogger.Instance;
        _progress = progress;
        Baseline = ReadValidationLoss();
        if (!double.IsFinite(Baseline) || Baseline < 0)
        {
            throw new ArgumentException(
                $"RefusalObjective.ValidationLoss returned {Baseline} on the aligned model; it must be a finite loss >= 0. " +
                "An empty validation split gives NaN: give it at least one (prompt, refusal) pair.", nameof(objective));
        }

        _integral = Multiplier = _options.InitialMultiplier;
    }

    /// <summary>The validation refusal loss of the model when the constraint was created (the aligned model).</summary>
    public double Baseline { get; }

    /// <summary>The constraint's bound: <see cref="Baseline"/> plus the tolerance.</summary>
    public double Target => Baseline + _options.Tolerance;

    /// <summary>The current multiplier lambda: the weight of the refusal loss in the steps until the next evaluation.</summary>
    public double Multiplier { get; private set; }

    /// <summary>Optimizer steps seen so far.</summary>
    public int Steps { get; private set; }

    /// <summary>The latest evaluation, or null before the first step.</summary>
    public RefusalConstraintProgress? Latest { get; private set; }

    /// <summary>
    /// Wraps <paramref name="inner"/> so that its <c>step()</c> adds the weighted refusal gradient to the task's, then steps.
    /// Wrap the outermost optimizer (for GuardSpace adapters, the <see cref="Training.GuardedOptimizer"/>), so that its
    /// projections see the summed gradient.
    /// </summary>
    public RefusalConstrainedOptimizer Wrap(optim.Optimizer inner) => new(inner, this);

    /// <summary>
    /// For a hand-written loop: call after the task loss's <c>backward()</c> and before the optimizer step (before
    /// <see cref="GuardedModel.AfterBackward"/> too). Evaluates the validation loss and updates the multiplier when
    /// an evaluation is due, then accumulates <c>lambda grad L_refusal</c> into the gradients.
    /// </summary>
    public void AfterBackward()
    {
        BeginStep();
        AddRefusalGradient();
    }

    /// <summary>Counts a step and runs the evaluation when one is due (closure optimizers call this once per step).</summary>
    internal void BeginStep()
    {
        if (Steps % _options.EvaluateEvery == 0)
        {
            Evaluate();
        }

        Steps++;
    }

    /// <summary>Backpropagates <c>lambda L_refusal</c> on one training batch, when lambda is positive.</summary>
    internal void AddRefusalGradient()
    {
        if (Multiplier <= 0)
        {
            return;
        }

        using var scope = NewDisposeScope();
        var loss = _objective.BatchLoss() ?? throw new InvalidOperationException("RefusalObjective.BatchLoss returned null; return the refusal loss of one batch as a scalar tensor.");
        if (loss.numel() != 1)
        {
            throw new InvalidOperationException($"RefusalObjective.BatchLoss returned a tensor of shape [{string.Join(", ", loss.shape)}]; it must be a scalar (reduce it with mean()).");
        }

        if (!loss.requires_grad)
        {
            throw new InvalidOperationException(
                "RefusalObjective.BatchLoss returned a loss that depends on no trainable parameter (requires_grad is false): " +
                "compute it with the model being trained, outside no_grad(), and keep the adapters enabled.");
        }

        (loss * Multiplier).backward();
    }

    /// <summary>
    /// Reads the validation loss (and, when due, the refusal rate), updates the multiplier and reports the reading. The
    /// optimizer wrapper and <see cref="AfterBackward"/> call it every <see cref="RefusalConstraintOptions.EvaluateEvery"/>
    /// steps; call it yourself for an extra reading (it also counts as a controller update).
    /// </summary>
    /// <exception cref="InvalidOperationException">The validation loss is not finite (the model diverged).</exception>
    public RefusalConstraintProgress Evaluate()
    {
        var loss = ReadValidationLoss();
        if (!double.IsFinite(loss))
        {
            throw new InvalidOperationException($"RefusalObjective.ValidationLoss returned {loss} after {Steps} steps: the model diverged (lower the learning rate) or the validation split changed.");
        }

        var error = (loss - Target) / _options.Tolerance;
        _integral = Math.Clamp(_integral + (_options.IntegralGain * error), 0, _options.MaxMultiplier);
        Multiplier = Math.Clamp(_integral + (_options.ProportionalGain * error), 0, _options.MaxMultiplier);
        _violations = loss > Target ? _violations + 1 : 0;
        if (_violations == _options.WarnAfterViolations)
        {
            Log.RefusalConstraintViolated(_logger, _violations, Steps, loss, Target, Multiplier);
        }

        double? rate = null;
        if (_objective.ValidationRefusalRate is { } readRate && _options.RefusalRateEvery > 0 && _evaluations % _options.RefusalRateEvery == 0)
        {
            using (no_grad())
            {
                rate = readRate();
            }
        }

        _evaluations++;
        var reading = new RefusalConstraintProgress(Steps, loss, Target, Multiplier, _violations, rate);
        Latest = reading;
        Log.RefusalConstraintEvaluated(_logger, Steps, loss, Target, Multiplier);
        _progress?.Report(reading);
        return reading;
    }

    private double ReadValidationLoss()
    {
        using var noGrad = no_grad();
        return _objective.ValidationLoss();
    }
}
