using GuardSpace.Projection;
using static TorchSharp.torch;

namespace GuardSpace.Decomposition;

/// <summary>
/// Splits a weight into a frozen part and a rank-r adapter initialisation: GuardSpace's safety-sensitive subspace
/// (covariance-preconditioned SVD, the r smallest components become the adapter) and the related baselines
/// (CorDA-IPM, PiSSA, MiLoRA); see <see cref="DecompositionMethod"/>.
/// </summary>
public interface ISafetySubspaceDecomposer
{
    /// <summary>The options this decomposer applies.</summary>
    SafetySubspaceOptions Options { get; }

    /// <summary>
    /// Decomposes one weight.
    /// </summary>
    /// <param name="layerName">The layer's dotted path, used in diagnostics and error messages.</param>
    /// <param name="weight">The weight <c>W</c>, m x n (out x in), any floating dtype, any device.</param>
    /// <param name="covariance">
    /// The input-activation covariance <c>C</c> (n x n, symmetric) on safety-triggering prompts. Required by the
    /// covariance methods, ignored by the plain ones.
    /// </param>
    /// <param name="rank">The adapter rank r, 1 &lt;= r &lt;= min(m, n).</param>
    /// <param name="projector">
    /// Optional null-space projector: when given, <c>A0</c> is projected (<c>A0 P</c>) and the residual is
    /// <c>W - B0 A0 P</c>, so the guarded layer still computes exactly <c>W</c> at initialisation.
    /// </param>
    /// <param name="cancellationToken">Cancels before the expensive steps.</param>
    /// <returns>The adapter factors, the residual and diagnostics. The caller owns and disposes it.</returns>
    LayerDecomposition Decompose(
        string layerName,
        Tensor weight,
        Tensor? covariance,
        int rank,
        INullSpaceProjector? projector = null,
        CancellationToken cancellationToken = default);
}
