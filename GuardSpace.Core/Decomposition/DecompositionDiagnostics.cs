using System.Text.Json.Serialization;

namespace GuardSpace.Decomposition;

/// <summary>What the decomposition of one layer found: the spectrum, the damping used and how well conditioned it was.</summary>
/// <param name="LayerName">The layer's dotted module path.</param>
/// <param name="Method">The decomposition method.</param>
/// <param name="SingularValues">All singular values of <c>W C_l</c> (or of <c>W</c> for plain methods), descending.</param>
/// <param name="AdapterIndices">Indices into <paramref name="SingularValues"/> of the components the adapter holds.</param>
/// <param name="Damping">The relative damping factor l finally used (0 for plain methods).</param>
/// <param name="DampingAbsolute">The absolute damping added to the diagonal, <c>l * mean(diag C)</c>.</param>
/// <param name="DampingDoublings">How many times l had to double from its initial value.</param>
/// <param name="ConditionEstimate">
/// A cheap lower bound on the condition number of <c>C_l</c>, <c>(max L_ii / min L_ii)^2</c> from its Cholesky factor
/// (NaN for plain methods).
/// </param>
/// <param name="SolveResidual">The relative probe residual of solves against <c>C_l</c> that was accepted (NaN for plain methods).</param>
/// <remarks>System.Text.Json writes the NaN values of plain methods as the string <c>"NaN"</c>.</remarks>
[JsonNumberHandling(JsonNumberHandling.AllowNamedFloatingPointLiterals)] // NaN and -Infinity have documented meanings here
public sealed record DecompositionDiagnostics(
    string LayerName,
    DecompositionMethod Method,
    IReadOnlyList<double> SingularValues,
    IReadOnlyList<int> AdapterIndices,
    double Damping,
    double DampingAbsolute,
    int DampingDoublings,
    double ConditionEstimate,
    double SolveResidual);
