using GuardSpace.Internal;

namespace GuardSpace.Behaviour;

/// <summary>
/// Options of the <see cref="RefusalConstraint"/>: the tolerance of the constraint
/// <c>L_refusal_val(theta) &lt;= L_refusal_val(theta_0) + Tolerance</c> and the controller that adapts its multiplier.
/// The controller works on the violation measured in tolerances, <c>e = (L_val - target) / Tolerance</c>, so its gains
/// mean the same whatever the loss's scale: a proportional-integral controller (dual ascent is its integral part),
/// <c>I &lt;- clamp(I + IntegralGain e, 0, MaxMultiplier)</c>, <c>lambda = clamp(I + ProportionalGain e, 0, MaxMultiplier)</c>.
/// </summary>
public sealed class RefusalConstraintOptions
{
    /// <summary>The default <see cref="Tolerance"/>: 0.05 nats per refusal token.</summary>
    public const double DefaultTolerance = 0.05;

    /// <summary>
    /// How far the validation refusal loss may rise above its value on the aligned model, in the loss's units. Default
    /// <see cref="DefaultTolerance"/>: for a per-token cross-entropy, the aligned refusal keeps at least e^-0.05, about 95%,
    /// of its (geometric-mean) per-token probability. Chosen from that reading, not tuned on a data set. Finite and &gt; 0.
    /// </summary>
    public double Tolerance { get; set; } = DefaultTolerance;

    /// <summary>
    /// Optimizer steps between two evaluations of the validation loss (each one updates the multiplier). Default 10. The
    /// first evaluation runs before the first step. Positive.
    /// </summary>
    public int EvaluateEvery { get; set; } = 10;

    /// <summary>
    /// Integral (dual-ascent) gain: the multiplier's change per evaluation for a violation of one tolerance; it rises
    /// while the constraint is violated and decays while it holds. Default 1. Finite and &gt;= 0.
    /// </summary>
    public double IntegralGain { get; set; } = 1.0;

    /// <summary>
    /// Proportional gain: the multiplier's immediate response to the current violation, in multiplier units per tolerance.
    /// It answers a sudden violation at once and vanishes when the violation does, which damps the integral's overshoot.
    /// Default 1. Finite and &gt;= 0.
    /// </summary>
    public double ProportionalGain { get; set; } = 1.0;

    /// <summary>The multiplier before the first evaluation (the integral's initial value). Default 0. Finite, between 0 and <see cref="MaxMultiplier"/>.</summary>
    public double InitialMultiplier { get; set; }

    /// <summary>The largest multiplier (anti-windup: the integral stops there too). Default 100. Finite and &gt; 0.</summary>
    public double MaxMultiplier { get; set; } = 100;

    /// <summary>
    /// After this many consecutive evaluations with the constraint violated, the constraint logs a warning (once per
    /// violation streak): the task pulls harder than the multiplier can answer. Default 10. Positive.
    /// </summary>
    public int WarnAfterViolations { get; set; } = 10;

    /// <summary>
    /// Read <see cref="RefusalObjective.ValidationRefusalRate"/> every this many evaluations (and at the first). Default 10.
    /// 0 never reads it. Non-negative.
    /// </summary>
    public int RefusalRateEvery { get; set; } = 10;

    /// <summary>A copy.</summary>
    internal RefusalConstraintOptions Clone() => (RefusalConstraintOptions)MemberwiseClone();

    /// <summary>Throws one <see cref="ArgumentException"/> listing every invalid option.</summary>
    public void Validate()
    {
        var errors = new OptionErrors(nameof(RefusalConstraintOptions));
        errors.Check(double.IsFinite(Tolerance) && Tolerance > 0, nameof(Tolerance), $"must be finite and > 0 (default {DefaultTolerance}); got {Tolerance}.");
        errors.Check(EvaluateEvery > 0, nameof(EvaluateEvery), $"must be positive (default 10); got {EvaluateEvery}.");
        errors.Check(double.IsFinite(IntegralGain) && IntegralGain >= 0, nameof(IntegralGain), $"must be finite and >= 0 (default 1); got {IntegralGain}.");
        errors.Check(double.IsFinite(ProportionalGain) && ProportionalGain >= 0, nameof(ProportionalGain), $"must be finite and >= 0 (default 1); got {ProportionalGain}.");
        errors.Check(double.IsFinite(MaxMultiplier) && MaxMultiplier > 0, nameof(MaxMultiplier), $"must be finite and > 0 (default 100); got {MaxMultiplier}.");
        errors.Check(double.IsFinite(InitialMultiplier) && InitialMultiplier >= 0 && !(InitialMultiplier > MaxMultiplier), nameof(InitialMultiplier), $"must be finite, >= 0 and <= MaxMultiplier (default 0); got {InitialMultiplier}.");
        errors.Check(WarnAfterViolations > 0, nameof(WarnAfterViolations), $"must be positive (default 10); got {WarnAfterViolations}.");
        errors.Check(RefusalRateEvery >= 0, nameof(RefusalRateEvery), $"must be >= 0 (default 10; 0 never reads the rate); got {RefusalRateEvery}.");
        errors.ThrowIfAny();
    }
}
