using static TorchSharp.torch;

namespace GuardSpace.Projection;

/// <summary>
/// The orthogonal projector <c>P = N N^T</c> onto the null space of one layer's harmful activations, applied to row
/// blocks: <c>A P</c> for an adapter's input-side factor <c>A</c> (r x n) or its gradient. An adapter whose
/// <c>A = A P</c> cannot change the layer's output on any harmful activation. Never stored as a dense n x n matrix.
/// </summary>
public interface INullSpaceProjector : IDisposable
{
    /// <summary>The layer (or covariance group) this projector was fitted for.</summary>
    string Name { get; }

    /// <summary>n, the width of the rows it projects.</summary>
    long InputWidth { get; }

    /// <summary>Dimension of the null space (0 means <c>P = 0</c>: the adapter is frozen).</summary>
    long NullDimension { get; }

    /// <summary>What the fit found.</summary>
    NullSpaceDiagnostics Diagnostics { get; }

    /// <summary>The device the basis lives on.</summary>
    Device Device { get; }

    /// <summary>The dtype of the stored basis (float32 or float64).</summary>
    ScalarType BasisType { get; }

    /// <summary>Bytes held by the stored basis (the smaller of the null basis and its complement).</summary>
    long StoredBytes { get; }

    /// <summary>
    /// A copy of the orthonormal basis (n x d) that defines this projector: it spans the null space when
    /// <see cref="NullSpaceDiagnostics.StoresNullBasis"/> is true (<c>P = N N^T</c>), else the null space's complement
    /// (<c>P = I - Q Q^T</c>). Saving an adapter writes it and loading rebuilds the projector from it, so any implementation
    /// can be saved. The caller disposes the copy.
    /// </summary>
    Tensor ExportBasis();

    /// <summary>Replaces <paramref name="rows"/> (k x n, any floating dtype) by <c>rows P</c>, in place (the tensor handle is kept).</summary>
    void ProjectRowsInPlace(Tensor rows);

    /// <summary>Returns <c>rows P</c> as a new tensor of the rows' dtype; <paramref name="rows"/> is unchanged.</summary>
    Tensor ProjectRows(Tensor rows);

    /// <summary>A copy of this projector with its basis on <paramref name="device"/> in <paramref name="basisType"/> (at least float32).</summary>
    INullSpaceProjector To(Device device, ScalarType basisType);
}
