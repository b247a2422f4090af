using GuardSpace.Decomposition;
using GuardSpace.Projection;
using static TorchSharp.torch;

namespace GuardSpace.Attach;

/// <summary>One layer's initial adapter state, as the attach pipeline (fresh) or the loader (saved) computes it.</summary>
/// <param name="A">The initial A (r x n), in the factor dtype, on the weight's device.</param>
/// <param name="B">The initial B (m x r).</param>
/// <param name="Residual">The frozen residual weight, or null when the frozen weight stays the original.</param>
/// <param name="Diagnostics">The decomposition's diagnostics, for decomposition-based methods.</param>
/// <param name="Group">The layer's covariance group, if any.</param>
internal readonly record struct LayerInit(Tensor A, Tensor B, Tensor? Residual, DecompositionDiagnostics? Diagnostics, string? Group)
{
    /// <summary>The harmful covariance factor of the layer's group, when the drift is tracked.</summary>
    public HarmfulCovarianceFactor? HarmfulFactor { get; init; }

    /// <summary><c>||W C_h^(1/2)||_F^2</c> of the original weight.</summary>
    public double HarmfulEnergy { get; init; }

    /// <summary><c>tr(C_h) / n</c> of the layer's group.</summary>
    public double HarmfulMeanEigenvalue { get; init; }
}
