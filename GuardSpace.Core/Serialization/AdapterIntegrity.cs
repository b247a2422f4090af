using GuardSpace.Internal;
using TorchSharp;
using static TorchSharp.torch;

namespace GuardSpace.Serialization;

/// <summary>
/// The content checks <c>Load</c> runs on a saved adapter beside its checksums: every projector basis must have
/// orthonormal columns and every guarded <c>A</c> (trained and initial) must satisfy <c>A = A P</c>, both within float
/// tolerance. They catch corruption that a file without checksums (format version 1) would otherwise hide, and a state
/// file whose config was rewritten to match. Both use four fixed random probes instead of forming <c>N^T N</c> or
/// <c>A P</c>: O(n d) per basis and O(r n) per A, against O(n d^2) and O(r n d).
/// </summary>
internal static class AdapterIntegrity
{
    private const int ProbeCount = 4;

    /// <summary>
    /// Checks one projector in a few products: with fixed Gaussian probes Z (n x 4), <c>Y = N^T Z</c> and
    /// <c>W = N Y</c>; the basis is orthonormal when <c>N^T W = Y</c>, and <c>P Z</c> is W (null basis stored) or Z - W.
    /// Every row block A then gets <c>||A (Z - P Z)||_F / ||A Z||_F</c>, a Hutchinson estimate of
    /// <c>||A - A P||_F / ||A||_F</c> (0 when A Z = 0). The basis is used in its own dtype and each block in its own
    /// (half precision in float32): only the tiny probes are converted. NaN anywhere gives NaN.
    /// </summary>
    /// <returns><c>||N^T W - Y||_F / ||Y||_F</c> (0 for an empty or full null space), and one estimate per row block.</returns>
    public static (double Orthonormality, double[] Projection) CheckProjector(Tensor basis, bool storesNullBasis, long nullDimension, long inputWidth, IReadOnlyList<Tensor> rowBlocks)
    {
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        using var generator = new Generator(0x0F70, CPU);

        // Row form (probes as rows): the large basis is never a transposed operand, which BLAS handles much faster
        // for these skinny shapes.
        var basisType = basis.dtype == ScalarType.Float32 ? ScalarType.Float32 : ScalarType.Float64;
        var zt = randn(ProbeCount, inputWidth, dtype: ScalarType.Float64, generator: generator).to(basisType, basis.device);
        var orthonormality = 0.0;
        Tensor projectedT;
        if (nullDimension == 0)
        {
            projectedT = zeros_like(zt);
        }
        else if (nullDimension == inputWidth)
        {
            projectedT = zt;
        }
        else
        {
            var n = basis.to_type(basisType);
            var yt = zt.mm(n);                                  // (N^T Z)^T
            var wt = n.mm(yt.T.contiguous()).T.contiguous();    // (N Y)^T
            orthonormality = (wt.mm(n) - yt).norm().ToDouble() / yt.norm().ToDouble();
            projectedT = storesNullBasis ? wt : zt - wt;
        }

        // [Z, Z - P Z] (n x 8): one product per block gives both norms.
        var both = cat([zt, zt - projectedT], 0).T.contiguous();
        var byType = new Dictionary<ScalarType, Tensor>();
        var errors = new double[rowBlocks.Count];
        for (var i = 0; i < rowBlocks.Count; i++)
        {
            var a = rowBlocks[i];
            var rows = a.to_type(AdapterPrecision.ComputeType(a.dtype));
            if (!byType.TryGetValue(rows.dtype, out var probes))
            {
                probes = byType[rows.dtype] = both.to(rows.dtype, rows.device);
            }

            var squares = rows.mm(probes).square().sum(0, type: ScalarType.Float64).cpu().data<double>().ToArray();
            var referenceNorm = Math.Sqrt(squares.Take(ProbeCount).Sum());
            var outsideNorm = Math.Sqrt(squares.Skip(ProbeCount).Sum());
            errors[i] = referenceNorm == 0 && outsideNorm == 0 ? 0 : outsideNorm / referenceNorm;
        }

        return (orthonormality, errors);
    }

    /// <summary>The tolerance of the orthonormality residual for an n x d basis of <paramref name="type"/>: 1000 sqrt(n) units of rounding, at least 1e-10.</summary>
    public static double OrthonormalityTolerance(ScalarType type, long n) => Math.Max(1e-10, 1000 * CovarianceChecks.Epsilon(type) * Math.Sqrt(n));

    /// <summary>The tolerance of the projection estimate for factors of <paramref name="type"/>: 1000 units of rounding (10 for half precision), at least 1e-10.</summary>
    public static double ProjectionTolerance(ScalarType type) =>
        TensorChecks.IsHalfPrecision(type) ? 10 * CovarianceChecks.Epsilon(type) : Math.Max(1e-10, 1000 * CovarianceChecks.Epsilon(type));
}
