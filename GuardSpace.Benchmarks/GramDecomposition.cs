using GuardSpace.Projection;
using TorchSharp;
using static TorchSharp.torch;

namespace GuardSpace.Benchmarks;

/// <summary>
/// A faster candidate for the library's stage I: only the r SMALLEST singular triplets of <c>M = W C_l</c> are needed,
/// so instead of a full thin SVD it runs block inverse iteration on the float64 Gram matrix of the smaller side
/// (<c>M^T M</c> when m &gt;= n, else <c>M M^T</c>), with a Cholesky factor of the Gram as the solver and a final
/// Rayleigh-Ritz step. Float64 keeps the squared condition number harmless for the small end of the spectrum
/// (Ritz values are accurate to about 1e-16 ||M||^2 absolute); M = W C_l itself is formed in float64 too. Converges at the rate
/// (sigma_r / sigma_{p+1})^2 per iteration, p = 2r; falls back to the thin SVD if it has not converged.
/// Damping, back-transform (Cholesky solve of r columns), projection and residual are the library's.
/// </summary>
public static class GramDecomposition
{
    public sealed record Result(Tensor AdapterB, Tensor AdapterA, Tensor Residual, double[] SingularValues, int Iterations, bool FellBack) : IDisposable
    {
        public void Dispose()
        {
            AdapterB.Dispose();
            AdapterA.Dispose();
            Residual.Dispose();
        }
    }

    public static int MaxIterations { get; set; } = 200;

    public static double Tolerance { get; set; } = 1e-12;

    public static Result Decompose(Tensor weight, Tensor safetyCovariance, int rank, INullSpaceProjector? projector)
    {
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var w = weight.to_type(ScalarType.Float32);
        var c = safetyCovariance.to_type(ScalarType.Float32);
        var (factor, absolute) = Damp(c);
        // M = W C_l in float64: float32 rounding of M (1e-7 ||M||) would otherwise dominate the error of the smallest triplets.
        var damped = c.to_type(ScalarType.Float64);
        damped.diagonal().add_(absolute);
        var m = w.to_type(ScalarType.Float64).mm(damped);

        var (uR, sR, vR, iterations, fellBack) = SmallestTriplets(m, rank);
        // Descending order, as the library selects them (the r smallest of a descending spectrum).
        uR = uR.flip(1);
        sR = sR.flip(0);
        vR = vR.flip(1);
        var sqrtS = sR.sqrt();
        var adapterB = uR * sqrtS.unsqueeze(0);
        var vHat = cholesky_solve(vR.contiguous(), factor);
        var adapterA = (vHat * sqrtS.unsqueeze(0)).T.contiguous();
        projector?.ProjectRowsInPlace(adapterA);
        var residual = w - adapterB.mm(adapterA);
        var sigma = sR.to_type(ScalarType.Float64).cpu().data<double>().ToArray();
        return new Result(adapterB.MoveToOuterDisposeScope(), adapterA.MoveToOuterDisposeScope(), residual.MoveToOuterDisposeScope(), sigma, iterations, fellBack);
    }

    /// <summary>The library's damping rule: Cholesky of <c>C + l mean(diag C) I</c>, l doubling from 0.01, accepted when probe solves are accurate.</summary>
    private static (Tensor Factor, double Absolute) Damp(Tensor c)
    {
        var n = c.shape[0];
        var meanDiagonal = c.diagonal().mean().ToDouble();
        var probes = randn(n, 4, dtype: c.dtype, device: c.device, generator: new Generator(0x5AFE, c.device));
        var probeNorm = probes.norm().ToDouble();
        for (double l = 0.01; l < 1e12; l *= 2)
        {
            var absolute = l * meanDiagonal;
            var damped = c.clone();
            damped.diagonal().add_(absolute);
            var (factor, info) = linalg.cholesky_ex(damped);
            if (info.ToInt32() != 0)
            {
                continue;
            }

            var residual = (damped.mm(cholesky_solve(probes, factor)) - probes).norm().ToDouble() / probeNorm;
            if (residual < 0.05)
            {
                return (factor, absolute);
            }
        }

        throw new ArithmeticException("The safety covariance stayed ill-conditioned.");
    }

    /// <summary>The r smallest singular triplets of <paramref name="m"/> (float64 in, float32 out, ascending).</summary>
    private static (Tensor U, Tensor S, Tensor V, int Iterations, bool FellBack) SmallestTriplets(Tensor m, int rank)
    {
        var (rows, cols) = (m.shape[0], m.shape[1]);
        var tall = rows >= cols;
        var k = Math.Min(rows, cols);
        var p = (int)Math.Min(k, 2L * rank);
        var m64 = m;
        var gram = tall ? m64.T.mm(m64) : m64.mm(m64.T);                    // k x k
        // A tiny shift keeps the Cholesky factor finite when M is (numerically) rank deficient; the Ritz step uses the unshifted Gram.
        var shift = 1e-13 * gram.diagonal().mean().ToDouble();
        var shifted = gram.clone();
        shifted.diagonal().add_(shift);
        var (chol, info) = linalg.cholesky_ex(shifted);
        if (info.ToInt32() != 0 || p >= k)
        {
            return FallBack(m, rank);
        }

        var x = linalg.qr(randn(k, p, dtype: ScalarType.Float64, device: m.device, generator: new Generator(0x6A11, m.device))).Q;
        double[]? previous = null;
        for (var it = 1; it <= MaxIterations; it++)
        {
            x = linalg.qr(cholesky_solve(x, chol)).Q;
            if (it % 3 != 0)
            {
                continue;
            }

            var theta = linalg.eigvalsh(x.T.mm(gram.mm(x)));
            var values = theta[..rank].cpu().data<double>().ToArray();
            if (previous is not null && Converged(previous, values, gram.diagonal().sum().ToDouble()))
            {
                var (ritz, z) = linalg.eigh(x.T.mm(gram.mm(x)));
                var vectors = x.mm(z[.., ..rank]);                                // k x r, ascending
                var sigma = ritz[..rank].clamp_min(0).sqrt();
                var other = (tall ? m64.mm(vectors) : m64.T.mm(vectors)) / sigma.unsqueeze(0);
                var (u, v) = tall ? (other, vectors) : (vectors, other);
                return (u.to_type(ScalarType.Float32), sigma.to_type(ScalarType.Float32), v.to_type(ScalarType.Float32), it, false);
            }

            previous = values;
        }

        return FallBack(m, rank);
    }

    private static bool Converged(double[] previous, double[] current, double trace)
    {
        for (var i = 0; i < current.Length; i++)
        {
            // Relative change of each Ritz value, with an absolute floor at the Gram's rounding level.
            var change = Math.Abs(current[i] - previous[i]);
            if (change > Tolerance * Math.Abs(current[i]) + 1e-15 * trace)
            {
                return false;
            }
        }

        return true;
    }

    private static (Tensor U, Tensor S, Tensor V, int Iterations, bool FellBack) FallBack(Tensor m, int rank)
    {
        var (u, s, vh) = linalg.svd(m.to_type(ScalarType.Float32), fullMatrices: false);
        var k = (int)s.shape[0];
        // Ascending like the Gram path.
        return (u[.., (k - rank)..].flip(1), s[(k - rank)..].flip(0), vh[(k - rank).., ..].T.flip(1), 0, true);
    }
}
