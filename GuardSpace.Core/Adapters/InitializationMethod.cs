namespace GuardSpace.Adapters;

/// <summary>How a guarded adapter is initialised and whether it is confined to a null space (the paper and its baselines; see docs/concepts.md and docs/api-guide.md).</summary>
public enum InitializationMethod
{
    /// <summary>Plain LoRA: Kaiming-uniform A, zero B, no projector. Needs no calibration.</summary>
    Lora,

    /// <summary>PiSSA: the r largest components of SVD(W); no projector. Needs no calibration.</summary>
    PiSSA,

    /// <summary>MiLoRA: the r smallest components of SVD(W); no projector. Needs no calibration.</summary>
    MiLoRA,

    /// <summary>CorDA knowledge-preserving mode (GuardSpace stage I only): the r smallest of SVD(W C_s); no projector. Needs safety prompts.</summary>
    CorDAKpm,

    /// <summary>CorDA instruction-previewed mode: the r largest of SVD(W C_s); no projector. Needs safety prompts.</summary>
    CorDAIpm,

    /// <summary>GuardSpace stage II only: Kaiming-uniform A projected onto the null space, zero B, projector P. Needs harmful prompts.</summary>
    NullSpaceLora,

    /// <summary>GuardSpace: the r smallest of SVD(W C_s), projected, with projector P. Needs safety and harmful prompts.</summary>
    GuardSpace,
}

/// <summary>What each <see cref="InitializationMethod"/> needs.</summary>
public static class InitializationMethodExtensions
{
    /// <summary>True when the method needs the safety-prompt covariance (stage I).</summary>
    public static bool NeedsSafetyCovariance(this InitializationMethod method) =>
        method is InitializationMethod.CorDAKpm or InitializationMethod.CorDAIpm or InitializationMethod.GuardSpace;

    /// <summary>True when the method confines updates to the harmful null space (stage II).</summary>
    public static bool UsesProjector(this InitializationMethod method) =>
        method is InitializationMethod.NullSpaceLora or InitializationMethod.GuardSpace;

    /// <summary>True when the adapter starts from a decomposition of W (so the frozen weight becomes a residual).</summary>
    public static bool UsesDecomposition(this InitializationMethod method) =>
        method is InitializationMethod.PiSSA or InitializationMethod.MiLoRA or InitializationMethod.CorDAKpm or InitializationMethod.CorDAIpm or InitializationMethod.GuardSpace;

    internal static Decomposition.DecompositionMethod ToDecompositionMethod(this InitializationMethod method) => method switch
    {
        InitializationMethod.PiSSA => Decomposition.DecompositionMethod.PlainLargest,
        InitializationMethod.MiLoRA => Decomposition.DecompositionMethod.PlainSmallest,
        InitializationMethod.CorDAIpm => Decomposition.DecompositionMethod.CovarianceLargest,
        _ => Decomposition.DecompositionMethod.CovarianceSmallest,
    };
}
