namespace GuardSpace.Behaviour;

/// <summary>The behaviour monitor's reading at one evaluation of a <see cref="RefusalConstraint"/>.</summary>
/// <param name="Step">Optimizer steps taken before this evaluation.</param>
/// <param name="ValidationLoss">The refusal loss on the validation split.</param>
/// <param name="Target">The constraint's bound: the aligned model's validation loss plus the tolerance.</param>
/// <param name="Multiplier">The multiplier after this evaluation's update: the weight of the refusal loss until the next one.</param>
/// <param name="Violations">Consecutive evaluations, this one included, with the validation loss above the target (0 when it holds).</param>
/// <param name="RefusalRate">The share of validation prompts refused, when it was read at this evaluation; otherwise null.</param>
public readonly record struct RefusalConstraintProgress(int Step, double ValidationLoss, double Target, double Multiplier, int Violations, double? RefusalRate)
{
    /// <summary>True when the validation loss is above the target.</summary>
    public bool IsViolated => Violations > 0;
}
