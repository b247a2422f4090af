using static TorchSharp.torch;

namespace GuardSpace.Decomposition;

/// <summary>
/// The result of decomposing one weight <c>W</c> (m x n): adapter factors <c>B0</c> (m x r) and <c>A0</c> (r x n) and the
/// frozen residual <c>W' = W - B0 A0</c>, on the weight's device. The residual has the weight's dtype; so do the factors,
/// except over a float16 or bfloat16 weight, where they are float32 (half-precision factors lose the null-space guarantee). When a projector was given,
/// <c>A0</c> is already projected (<c>A0 = A0 P</c>) and the residual is <c>W - B0 A0 P</c>.
/// Owns its tensors: dispose it when done.
/// </summary>
public sealed class LayerDecomposition : IDisposable
{
    internal LayerDecomposition(Tensor adapterB, Tensor adapterA, Tensor residual, DecompositionDiagnostics diagnostics, bool projected)
    {
        AdapterB = adapterB.DetachFromDisposeScope();
        AdapterA = adapterA.DetachFromDisposeScope();
        Residual = residual.DetachFromDisposeScope();
        Diagnostics = diagnostics;
        IsProjected = projected;
    }

    /// <summary>The layer's dotted module path.</summary>
    public string LayerName => Diagnostics.LayerName;

    /// <summary>The adapter rank r.</summary>
    public int Rank => (int)AdapterA.shape[0];

    /// <summary>The output-side factor <c>B0 = U_r sqrt(S_r)</c>, m x r.</summary>
    public Tensor AdapterB { get; }

    /// <summary>The input-side factor <c>A0 = sqrt(S_r) V^_r^T</c> (projected when <see cref="IsProjected"/>), r x n.</summary>
    public Tensor AdapterA { get; }

    /// <summary>The frozen residual <c>W - B0 A0</c>, m x n.</summary>
    public Tensor Residual { get; }

    /// <summary>True when <see cref="AdapterA"/> was projected onto a null space before the residual was formed.</summary>
    public bool IsProjected { get; }

    /// <summary>Spectrum, damping and conditioning.</summary>
    public DecompositionDiagnostics Diagnostics { get; }

    /// <inheritdoc />
    public void Dispose()
    {
        AdapterB.Dispose();
        AdapterA.Dispose();
        Residual.Dispose();
    }
}
