using GuardSpace.Decomposition;
using GuardSpace.Projection;

namespace GuardSpace.Adapters;

/// <summary>How a target layer was intercepted.</summary>
public enum InterceptionMode
{
    /// <summary>The Linear was replaced by a <see cref="GuardedLoraAdapter"/> (its parent's field, list or registry now holds the adapter).</summary>
    Replaced,

    /// <summary>
    /// The Linear could not be replaced (for example a field declared as the sealed <c>Linear</c>): it keeps the frozen
    /// residual and a forward hook adds the adapter, which is registered beside it as <c>&lt;name&gt;_guard</c>. The parent
    /// must call the Linear through <c>call()</c>.
    /// </summary>
    ForwardHook,
}

/// <summary>What <see cref="GuardedModel.Attach"/> did to one layer.</summary>
/// <param name="Name">The layer's dotted module path.</param>
/// <param name="OutFeatures">m.</param>
/// <param name="InFeatures">n.</param>
/// <param name="Rank">The adapter rank.</param>
/// <param name="Method">The initialisation method.</param>
/// <param name="Interception">How the layer was intercepted.</param>
/// <param name="AdapterPath">The adapter module's dotted path (differs from <paramref name="Name"/> in hook mode).</param>
/// <param name="CovarianceGroup">The covariance group (layers reading the same input share it), or null.</param>
/// <param name="Decomposition">Spectrum and damping, for decomposition-based methods.</param>
/// <param name="NullSpace">The projector's diagnostics, for projected methods.</param>
/// <param name="Frozen">True when the layer has no null space and its adapter is frozen.</param>
public sealed record LayerAttachReport(
    string Name,
    long OutFeatures,
    long InFeatures,
    int Rank,
    InitializationMethod Method,
    InterceptionMode Interception,
    string AdapterPath,
    string? CovarianceGroup,
    DecompositionDiagnostics? Decomposition,
    NullSpaceDiagnostics? NullSpace,
    bool Frozen);

/// <summary>Progress of <see cref="GuardedModel.Attach"/>.</summary>
/// <param name="Stage">What is running: "safety covariances", "harmful covariances", "null spaces", "decomposition", "surgery".</param>
/// <param name="Done">Items done in this stage.</param>
/// <param name="Total">Items in this stage.</param>
/// <param name="Current">The layer being processed, if any.</param>
public readonly record struct AttachProgress(string Stage, int Done, int Total, string? Current);
