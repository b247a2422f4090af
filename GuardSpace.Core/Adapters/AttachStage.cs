namespace GuardSpace.Adapters;

/// <summary>The stages <see cref="GuardedModel.Attach"/> and <see cref="GuardedModel.Load"/> report, in the order they run.</summary>
public enum AttachStage
{
    /// <summary>Load only: reading the config and the state file.</summary>
    Reading,

    /// <summary>Load only: checksums, shapes, content and base-weight fingerprints.</summary>
    Verifying,

    /// <summary>Collecting the input covariances of the safety prompts (CorDA, GuardSpace).</summary>
    SafetyCovariances,

    /// <summary>Collecting the input covariances of the harmful prompts (projected methods, drift tracking).</summary>
    HarmfulCovariances,

    /// <summary>Fitting one null-space projector per covariance group.</summary>
    NullSpaces,

    /// <summary>Building each layer's adapter (the decomposition, for decomposition-based methods).</summary>
    Decomposition,

    /// <summary>Replacing or hooking the layers; the attachment commits at the end of this stage.</summary>
    Surgery,
}
