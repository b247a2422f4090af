using GuardSpace.Internal;
using static TorchSharp.torch;

namespace GuardSpace.Projection;

/// <summary>
/// A factor <c>F</c> (n x k) of one covariance group's harmful covariance, restricted to the directions an adapter can
/// move in: <c>F = Q_k diag(sqrt(mu_k))</c> over the eigenpairs of <c>C_h</c> that lie in the null space (projected
/// methods) or over all of them (unprojected methods), numerically zero ones dropped. For any weight change
/// <c>dW</c> confined to those directions, <c>||dW C_h^(1/2)||_F = ||dW F||_F</c>: the change of the layer's outputs on
/// the harmful calibration activations, computed without a forward pass and without an n x n matrix.
/// </summary>
internal sealed class HarmfulCovarianceFactor : IDisposable
{
    // Eigenvalues under this fraction of the largest carry no measurable energy: dropping them keeps k small.
    internal const double NegligibleEigenvalue = 1e-12;

    private readonly Tensor _factor;
    private Tensor? _converted;

    internal HarmfulCovarianceFactor(string name, Tensor factor)
    {
        Name = name;
        _factor = factor.DetachFromDisposeScope();
    }

    /// <summary>The covariance group the factor belongs to (its first layer).</summary>
    public string Name { get; }

    /// <summary>n x k, float64, on the covariance's device.</summary>
    public Tensor Factor => _factor;

    /// <summary>k, the number of directions kept.</summary>
    public long Rank => _factor.shape[1];

    /// <summary>
    /// Builds the factor from an ascending eigendecomposition of the harmful covariance. Only columns
    /// <c>[0, limit)</c> are candidates (the null space for projected methods, everything otherwise).
    /// </summary>
    public static HarmfulCovarianceFactor FromEigen(string name, Tensor eigenvectors, double[] mu, long limit)
    {
        using var scope = NewDisposeScope();
        var floor = NegligibleEigenvalue * mu[^1];
        var keep = Enumerable.Range(0, (int)limit).Where(i => mu[i] > floor).ToArray();
        var n = eigenvectors.shape[0];
        Tensor factor;
        if (keep.Length == 0)
        {
            factor = zeros(n, 0, dtype: ScalarType.Float64, device: eigenvectors.device);
        }
        else
        {
            var index = tensor(keep.Select(i => (long)i).ToArray(), dtype: ScalarType.Int64, device: eigenvectors.device);
            var roots = tensor(keep.Select(i => Math.Sqrt(mu[i])).ToArray(), dtype: ScalarType.Float64, device: eigenvectors.device);
            factor = (eigenvectors.to_type(ScalarType.Float64).index_select(1, index) * roots.unsqueeze(0)).contiguous();
        }

        return new HarmfulCovarianceFactor(name, factor.MoveToOuterDisposeScope());
    }

    /// <summary>The factor of a whole harmful covariance (all directions), for layers without a projector.</summary>
    public static HarmfulCovarianceFactor FromCovariance(string name, Tensor harmfulCovariance)
    {
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var c = harmfulCovariance.to_type(ScalarType.Float64);
        var (eigenvalues, eigenvectors) = linalg.eigh((c + c.T) * 0.5);
        var mu = eigenvalues.cpu().data<double>().ToArray();
        return FromEigen(name, eigenvectors, mu, mu.Length);
    }

    /// <summary>The factor in <paramref name="like"/>'s device and dtype (at least float32), converted once and cached.</summary>
    public Tensor For(Tensor like)
    {
        var type = AdapterPrecision.ComputeType(like.dtype);
        if (_factor.dtype == type && _factor.device.SameAs(like.device))
        {
            return _factor;
        }

        if (_converted is null || _converted.dtype != type || !_converted.device.SameAs(like.device))
        {
            _converted?.Dispose();
            _converted = _factor.to(type, like.device).DetachFromDisposeScope();
        }

        return _converted;
    }

    /// <inheritdoc />
    public void Dispose()
    {
        _converted?.Dispose();
        _factor.Dispose();
    }
}
