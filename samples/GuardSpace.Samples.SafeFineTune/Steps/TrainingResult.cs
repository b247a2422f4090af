using System.Globalization;
using GuardSpace.Behaviour;

namespace GuardSpace.Samples.SafeFineTune;

/// <summary>What the fine-tune did: the first and last step's loss (null when no step ran) and the refusal constraint, if any.</summary>
internal sealed record TrainingResult(double? FirstLoss, double? LastLoss, RefusalConstraint? Constraint)
{
    /// <summary>True when at least one optimizer step ran.</summary>
    public bool Trained => FirstLoss is not null;

    /// <summary>The loss as printed: three decimals, or "none" when no step ran (never NaN).</summary>
    public static string Format(double? loss) => loss is { } value ? value.ToString("F3", CultureInfo.CurrentCulture) : "none";
}
