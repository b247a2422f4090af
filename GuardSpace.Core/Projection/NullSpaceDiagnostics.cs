using System.Text.Json.Serialization;

namespace GuardSpace.Projection;

/// <summary>What the null-space fit of one layer (or one group of layers sharing an input) found.</summary>
/// <param name="Name">The layer (or covariance group) name.</param>
/// <param name="InputWidth">n, the layer's input width.</param>
/// <param name="NullDimension">Dimension of the null space the adapter may move in (0: the adapter is frozen).</param>
/// <param name="Rule">The rule finally applied (differs from the requested one after a fall-back).</param>
/// <param name="Threshold">
/// The eigenvalue threshold used: directions with <c>mu &lt;= Threshold</c> are null. Negative infinity when the energy
/// rule protects every direction (nothing is null). System.Text.Json writes it as the string <c>"-Infinity"</c>.
/// </param>
/// <param name="MaxEigenvalue">The largest eigenvalue of the harmful covariance.</param>
/// <param name="ProtectedEnergyFraction">Fraction of the covariance's trace in the protected directions.</param>
/// <param name="StoresNullBasis">True when the stored basis spans the null space; false when it spans the protected complement.</param>
/// <param name="FellBack">True when the empty null space made the energy rule take over.</param>
[JsonNumberHandling(JsonNumberHandling.AllowNamedFloatingPointLiterals)] // NaN and -Infinity have documented meanings here
public sealed record NullSpaceDiagnostics(
    string Name,
    long InputWidth,
    long NullDimension,
    NullSpaceThresholdRule Rule,
    double Threshold,
    double MaxEigenvalue,
    double ProtectedEnergyFraction,
    bool StoresNullBasis,
    bool FellBack)
{
    /// <summary>Dimension of the protected (harmful-activation) subspace, <c>n - NullDimension</c>.</summary>
    public long ProtectedDimension => InputWidth - NullDimension;

    /// <summary>True when there is no null space: the projector is zero and the adapter cannot move.</summary>
    public bool IsEmpty => NullDimension == 0;
}
