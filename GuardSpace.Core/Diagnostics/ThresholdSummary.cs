using System.Globalization;

namespace GuardSpace.Diagnostics;

/// <summary>The null-space threshold rule and the value it chose, as one log field.</summary>
/// <param name="Rule">The threshold rule's name.</param>
/// <param name="Threshold">The eigenvalue threshold it chose.</param>
internal readonly record struct ThresholdSummary(string Rule, double Threshold)
{
    /// <inheritdoc />
    public override string ToString() => string.Format(CultureInfo.InvariantCulture, "{0} rule, threshold {1:G3}", Rule, Threshold);
}
