using TorchSharp;
using static TorchSharp.torch;

namespace GuardSpace.Benchmarks;

/// <summary>
/// A port of the official GuardSpace per-layer algorithm (CorDA "KPM" decomposition plus the null-space projector),
/// kept in the benchmarks only as the reference cost:
/// <list type="number">
/// <item>explicit inverse of <c>C_l = C_s + l mean(diag C_s) I</c>, doubling l until <c>||C_l C_l^-1 - I||_F &lt; 0.05</c>;</item>
/// <item>thin SVD <c>W C_l = U S V^T</c>; back-transform of ALL columns, <c>V^T C_l^-1</c>;</item>
/// <item><c>eigh(C_h)</c>, null eigenvectors (<c>mu &lt;= max(1e-8, 1e-6 max mu)</c>), QR of them, dense <c>P = N N^T</c> (n x n);</item>
/// <item>the r smallest components: <c>B0 = U_r sqrt(S_r)</c>, <c>A0 = sqrt(S_r) V^_r^T</c>, residual <c>W - U_r S_r V^_r^T P</c>.</item>
/// </list>
/// </summary>
public static class OfficialPipeline
{
    public sealed record Result(Tensor AdapterB, Tensor AdapterA, Tensor Residual, Tensor Projector, double Damping) : IDisposable
    {
        public void Dispose()
        {
            AdapterB.Dispose();
            AdapterA.Dispose();
            Residual.Dispose();
            Projector.Dispose();
        }
    }

    public static Result Run(Tensor weight, Tensor safetyCovariance, Tensor harmfulCovariance, int rank)
    {
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var w = weight.to_type(ScalarType.Float32);
        var cov = safetyCovariance.to_type(ScalarType.Float32);
        var n = cov.shape[0];
        var identity = eye(n, dtype: ScalarType.Float32, device: cov.device);

        // Damping: explicit inverse and its residual, doubling until accepted.
        var damp = 0.01;
        Tensor fixedCov, covInv;
        while (true)
        {
            var compensate = identity * (cov.diagonal().mean() * damp);
            fixedCov = cov + compensate;
            covInv = linalg.inv(fixedCov);
            var invError = (fixedCov.mm(covInv) - identity).norm().ToDouble();
            if (invError < 0.05 || damp > 1e6)
            {
                break;
            }

            damp *= 2;
        }

        // Thin SVD of W C_l and the full back-transform V^T C_l^-1.
        var (u, s, vt) = linalg.svd(w.mm(fixedCov), fullMatrices: false);
        var vHatT = vt.mm(covInv);                                       // k x n

        // Null space of the harmful covariance: eigh, threshold, QR, dense P.
        var (mu, q) = linalg.eigh(harmfulCovariance.to_type(ScalarType.Float32));
        var threshold = Math.Max(1e-8, 1e-6 * mu.max().ToDouble());
        var nullIdx = nonzero(mu <= threshold).squeeze(1);
        var nullVecs = q.index_select(1, nullIdx);
        var (qNull, _) = linalg.qr(nullVecs);
        var projector = qNull.mm(qNull.T);                               // n x n

        // The r smallest components.
        var k = s.shape[0];
        var uR = u[.., (int)(k - rank)..];
        var sR = s[(int)(k - rank)..];
        var vHatTR = vHatT[(int)(k - rank).., ..];
        var sqrtS = sR.sqrt();
        var adapterB = uR * sqrtS.unsqueeze(0);
        var adapterA = sqrtS.unsqueeze(1) * vHatTR;                     // unprojected: P is applied in the forward
        var residual = w - (uR * sR.unsqueeze(0)).mm(vHatTR).mm(projector);
        return new Result(
            adapterB.MoveToOuterDisposeScope(),
            adapterA.MoveToOuterDisposeScope(),
            residual.MoveToOuterDisposeScope(),
            projector.MoveToOuterDisposeScope(),
            damp);
    }
}
