namespace GuardSpace.Decomposition;

/// <summary>Which factorisation of a weight initialises the adapter, and which of its components the adapter takes.</summary>
public enum DecompositionMethod
{
    /// <summary>
    /// Covariance-preconditioned SVD <c>W C = U S V^T</c>; the adapter takes the r SMALLEST components and the large,
    /// safety-relevant ones stay frozen. GuardSpace stage I; CorDA's knowledge-preserving mode (KPM).
    /// </summary>
    CovarianceSmallest,

    /// <summary>Covariance-preconditioned SVD; the adapter takes the r LARGEST components (CorDA's instruction-previewed mode, IPM).</summary>
    CovarianceLargest,

    /// <summary>Plain SVD of <c>W</c>; the adapter takes the r largest components (PiSSA).</summary>
    PlainLargest,

    /// <summary>Plain SVD of <c>W</c>; the adapter takes the r smallest components (MiLoRA).</summary>
    PlainSmallest,
}

/// <summary>Helpers on <see cref="DecompositionMethod"/>.</summary>
public static class DecompositionMethodExtensions
{
    /// <summary>True when the method preconditions with an activation covariance (and therefore needs one).</summary>
    public static bool UsesCovariance(this DecompositionMethod method) =>
        method is DecompositionMethod.CovarianceSmallest or DecompositionMethod.CovarianceLargest;

    /// <summary>True when the adapter takes the smallest singular components.</summary>
    public static bool TakesSmallest(this DecompositionMethod method) =>
        method is DecompositionMethod.CovarianceSmallest or DecompositionMethod.PlainSmallest;
}
