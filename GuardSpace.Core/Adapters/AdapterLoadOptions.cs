namespace GuardSpace.Adapters;

/// <summary>Options of <see cref="GuardedModel.Load"/>. The defaults refuse anything that does not match exactly.</summary>
public sealed class AdapterLoadOptions
{
    /// <summary>
    /// Load even when a guarded layer's weight is not the one the adapter was made from (the fingerprint saved in the
    /// config does not match the model; docs/adapter-format.md). Default false: such a load throws
    /// <see cref="ArgumentException"/> naming every such layer, because the frozen residuals are recomputed from the
    /// model's weights and the loaded model would then compute something other than the saved one. When true, a warning
    /// (event 403) names the layers instead. File corruption (checksums, bases, <c>A = A P</c>) is never overridable.
    /// </summary>
    public bool AllowBaseWeightMismatch { get; set; }
}
