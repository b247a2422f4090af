using System.Globalization;

namespace GuardSpace.Diagnostics;

/// <summary>A decomposed layer's adapter spectrum, as one log field.</summary>
/// <param name="First">The largest adapter singular value.</param>
/// <param name="Last">The smallest adapter singular value.</param>
/// <param name="Damping">The damping l added to the safety covariance.</param>
/// <param name="Condition">A lower bound on the damped covariance's condition number.</param>
internal readonly record struct SpectrumSummary(double First, double Last, double Damping, double Condition)
{
    /// <inheritdoc />
    public override string ToString() => string.Format(
        CultureInfo.InvariantCulture, "adapter singular values {0:G4} .. {1:G4}, damping l = {2:G3}, condition >= {3:G3}", First, Last, Damping, Condition);
}
