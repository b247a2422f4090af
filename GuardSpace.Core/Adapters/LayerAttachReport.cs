using GuardSpace.Decomposition;
using GuardSpace.Projection;

namespace GuardSpace.Adapters;

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
