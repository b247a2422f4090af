namespace GuardSpace.Decomposition;

/// <summary>How <see cref="SafetySubspaceDecomposer"/> finds the r extreme singular triplets of <c>M = W C_l</c> (or of <c>W</c>).</summary>
public enum DecompositionSolver
{
    /// <summary>
    /// <see cref="Iterative"/> when the method takes the r smallest components (GuardSpace, CorDA-KPM, MiLoRA) and the
    /// adapter is small against the layer, <c>min(m, n) &gt;= 512</c>, <c>r &lt;= min(m, n) / 32</c> and the layer is near square (<c>max(m, n) &lt;= 1.5 min(m, n)</c>); <see cref="FullSvd"/>
    /// otherwise, where a full thin SVD was as fast or faster (the largest end converges slowly on weight-like spectra).
    /// </summary>
    Auto,

    /// <summary>One full thin SVD of <c>M</c>; every singular value is reported in the diagnostics.</summary>
    FullSvd,

    /// <summary>
    /// Block inverse iteration (r smallest) or block subspace iteration (r largest) in float64 on the smaller side of
    /// <c>M</c>, inverse steps solved with the LU factors of a square <c>M</c> or the triangular factor of a QR of a
    /// rectangular one (never the Cholesky factor of its Gram matrix, which would square the condition number), finished
    /// by a Rayleigh-Ritz step on <c>M</c> itself. Falls back to <see cref="FullSvd"/> (and says so in the log and the
    /// diagnostics) when it does not converge, when the r-th and (r+1)-th singular values are too close for the adapter's
    /// subspace to be well defined, when r is too close to <c>min(m, n)</c>, or when the factorisation is singular. Only
    /// the adapter's singular values are reported; the others are NaN in the diagnostics.
    /// </summary>
    Iterative,
}
