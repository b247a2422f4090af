using System.Text.Json.Serialization;

namespace GuardSpace.Decomposition;

/// <summary>What the decomposition of one layer found: the spectrum, the damping used and how well conditioned it was.</summary>
/// <param name="LayerName">The layer's dotted module path.</param>
/// <param name="Method">The decomposition method.</param>
/// <param name="SingularValues">
/// All singular values of <c>W C_l</c> (or of <c>W</c> for plain methods), descending. When <see cref="Solver"/> is
/// <see cref="DecompositionSolver.Iterative"/> only the adapter's values (at <paramref name="AdapterIndices"/>) are known
/// and every other entry is NaN.
/// </param>
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
    double SolveResidual)
{
    /// <summary>
    /// The solver that produced the decomposition: <see cref="DecompositionSolver.FullSvd"/> or
    /// <see cref="DecompositionSolver.Iterative"/>, never <see cref="DecompositionSolver.Auto"/>. Default FullSvd.
    /// </summary>
    public DecompositionSolver Solver { get; init; } = DecompositionSolver.FullSvd;

    /// <summary>Iterations the iterative solver ran (also when it then fell back); 0 when it did not run.</summary>
    public int SolverIterations { get; init; }

    /// <summary>
    /// The iterative solver's last convergence residual over the r + 1 extreme Ritz triplets, relative to <c>||M||_F</c>:
    /// <c>max ||M^T u - s v||</c> for the largest; for the smallest <c>max ||R v - s^2 R^-T v||</c>, with <c>R</c> the
    /// triangular factor of the QR of <c>M</c> (or <c>M^T</c>), which weighs each stray direction by its effect on
    /// <c>B0 A0</c> and, unlike <c>||M^T u - s v||</c>, has a rounding floor that does not grow with the condition number.
    /// NaN when the solver did not run or never reached a check.
    /// </summary>
    public double SolverResidual { get; init; } = double.NaN;

    /// <summary>Why the iterative solver fell back to the full SVD (then <see cref="Solver"/> is FullSvd); null when it did not.</summary>
    public string? SolverFallbackReason { get; init; }
}
