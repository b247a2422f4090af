using TorchSharp;
using static TorchSharp.torch;

namespace GuardSpace.Decomposition;

/// <summary>
/// The r smallest or r largest singular triplets of a float64 matrix <c>M</c> (m x n) without a full SVD.
/// Works on the smaller side: <c>A = M</c> (k = n) when m &gt;= n, else <c>A = M^T</c> (k = m); the operator is
/// <c>G = A^T A</c> (k x k), never formed. Smallest: block inverse iteration, <c>X &lt;- orth(G^-1 X)</c> with
/// <c>G = R^T R</c> from <c>A = Q R</c> (two triangular solves), or, for a square A, <c>G^-1 = A^-1 A^-T</c> from
/// <c>A = P L U</c> (two LU solves; the LU costs a third of the QR). Both keep the rounding at eps ||M|| where a Cholesky
/// factor of the formed Gram would square the condition number. Largest: block subspace iteration
/// <c>X &lt;- orth(A^T (A X))</c>. Every third step is a Rayleigh-Ritz step whose Ritz vectors become the next block,
/// and the columns are normalised before each QR, which keeps the attainable residual near eps ||M|| even when the block's
/// singular values span orders of magnitude. The block has p = min(max(3r, r + 4), k - 1) columns. Each check is a
/// Rayleigh-Ritz step on <c>A</c> itself: the thin SVD of <c>A X</c> (k-side vectors <c>X Z</c>, big-side vectors
/// <c>A X Z / S</c>), accepted when the r + 1 extreme Ritz triplets have a residual at most <c>tolerance ||M||_F</c>:
/// <c>||A^T u - s v||</c> for the largest, <c>||R v - s^2 R^-T v||</c> for the smallest (square A:
/// <c>||A v - s^2 A^-T v||</c>, the same norm; see the comment at its computation).
/// </summary>
internal static class ExtremeSingularTriplets
{
    /// <summary>Below this relative gap between the r-th and (r+1)-th singular values the adapter's subspace is taken as ill-defined.</summary>
    public const double MinimumRelativeGap = 1e-6;

    // Measured at 2048 x 2048, r = 16 (scratch profile, 2 threads): a block of 2r needed 14 steps, 3r 9-10, 4r 8 at a
    // higher cost per step; a Rayleigh-Ritz check every third step instead of every second cut the solver from about
    // 470 ms (2r, every second) to about 390 ms.
    private const int RayleighRitzInterval = 3;

    /// <summary>The outcome: on success U (m x r), S (r), V (n x r) in descending order of S; otherwise a reason.</summary>
    public sealed record Result(Tensor? U, Tensor? S, Tensor? V, int Iterations, double Residual, double RelativeGap, string? FailureReason)
    {
        public bool Converged => FailureReason is null;
    }

    /// <summary>Finds the triplets; tensors it returns belong to the caller's dispose scope.</summary>
    public static Result Compute(Tensor m, int rank, bool largest, double tolerance, int maxIterations, CancellationToken cancellationToken)
    {
        var (rows, cols) = (m.shape[0], m.shape[1]);
        var tall = rows >= cols;
        var k = (int)Math.Min(rows, cols);
        var p = Math.Min(Math.Max(3 * rank, rank + 4), k - 1);
        if (p < rank + 1)
        {
            return Failed(0, double.NaN, double.NaN, $"r = {rank} is too close to min(m, n) = {k} for a block method");
        }

        var a = tall ? m : m.T;                                   // big x k, a view
        var aNorm = a.norm().ToDouble();
        if (!(aNorm > 0) || !double.IsFinite(aNorm))
        {
            return Failed(0, double.NaN, double.NaN, "the matrix is zero or not finite");
        }

        // Smallest end: a square A is LU-factored (a third of a QR's flops; G^-1 = A^-1 A^-T, two LU solves a step), a
        // rectangular one QR-factored (k x k upper triangular R with A^T A = R^T R, two triangular solves a step).
        Tensor? r = null, rT = null, luFactor = null, pivots = null;
        var square = rows == cols;
        if (!largest)
        {
            if (square)
            {
                // torch.lu with infos: a zero pivot is reported below, where linalg.lu_factor would throw (TorchSharp has no lu_factor_ex).
                (luFactor, pivots, _) = lu(a, get_infos: true);
            }
            else
            {
                r = linalg.qr(a, linalg.QRMode.R).R;
                rT = r.T.contiguous();
            }

            // A zero (or non-finite) pivot: G is singular and inverse iteration would divide by zero.
            var pivot = (luFactor ?? r)!.diagonal().abs();
            if (!(pivot.min().ToDouble() > 0) || !double.IsFinite(pivot.max().ToDouble()))
            {
                return Failed(0, double.NaN, double.NaN, "the matrix is singular (a zero pivot in its factorisation), so inverse iteration cannot run");
            }
        }

        var generator = new Generator(0x5EED, m.device);
        var x = linalg.qr(randn(k, p, dtype: ScalarType.Float64, device: m.device, generator: generator)).Q;
        var residual = double.NaN;
        var gap = double.NaN;
        for (var it = 1; it <= maxIterations; it++)
        {
            cancellationToken.ThrowIfCancellationRequested();
            using (var step = NewDisposeScope())
            {
                var y = largest
                    ? a.T.mm(a.mm(x))
                    : square
                        ? linalg.lu_solve(luFactor!, pivots!, linalg.lu_solve(luFactor!, pivots!, x, adjoint: true))
                        : linalg.solve_triangular(r!, linalg.solve_triangular(rT!, x, upper: false), upper: true);
                // Unit columns before the QR: after a Rayleigh-Ritz step each column is dominated by its own Ritz direction, and
                // scaling keeps the QR's rounding relative to each column (without it the smallest direction swamps the others).
                var norms = y.square().sum(0L, true).sqrt();
                if (!double.IsFinite(norms.sum().ToDouble()))
                {
                    return Failed(it, residual, gap, "the iteration produced non-finite values (the matrix is numerically singular)");
                }

                var next = linalg.qr(y / norms).Q;
                x.Dispose();
                x = next.MoveToOuterDisposeScope();
            }

            if (it < maxIterations && it % RayleighRitzInterval != 0)
            {
                continue;                                         // Rayleigh-Ritz every third step, and at the last
            }

            // Rayleigh-Ritz on A: A X = Ub S Z^T, so the k-side Ritz vectors are X Z and the big-side ones A X Z / S.
            using var check = NewDisposeScope();
            var (ub, s, zh) = linalg.svd(a.mm(x), fullMatrices: false); // s descending, p values
            var start = largest ? 0 : p - rank;
            var checkStart = largest ? 0 : p - rank - 1;          // the r + 1 extreme triplets
            var vk = x.mm(zh[checkStart..(checkStart + rank + 1)].T);
            var uBig = ub[.., checkStart..(checkStart + rank + 1)];
            var sCheck = s[checkStart..(checkStart + rank + 1)];
            // Largest: ||A^T u - s v||. Smallest: the same residual seen through R^-T, ||R v - s^2 R^-T v|| (= R^-T (G - s^2) v),
            // which weighs each stray direction j by (s_j^2 - s^2) / s_j, its effect on the adapter's product, where
            // ||A^T u - s v|| weighs it by (s_j^2 - s^2) / s and so has a rounding floor of eps ||M|| cond(M) (u = A v / s).
            // A square A gives the same norm as ||A v - s^2 A^-T v||: A = Q R with Q square orthogonal.
            var stray = largest
                ? a.T.mm(uBig) - vk * sCheck.unsqueeze(0)
                : square
                    ? a.mm(vk) - linalg.lu_solve(luFactor!, pivots!, vk, adjoint: true) * sCheck.square().unsqueeze(0)
                    : r!.mm(vk) - linalg.solve_triangular(rT!, vk, upper: false) * sCheck.square().unsqueeze(0);
            residual = stray.square().sum(0L, false).sqrt().max().ToDouble() / aNorm;
            if (!double.IsFinite(residual))
            {
                return Failed(it, residual, gap, "the iteration produced non-finite values (the matrix is numerically singular)");
            }

            if (residual > tolerance)
            {
                // Iterate on the Ritz vectors (ordered by singular value): the next step sharpens each one separately.
                var ritz = x.mm(zh.T).MoveToOuterDisposeScope();
                x.Dispose();
                x = ritz;
                continue;
            }

            var values = sCheck.cpu().data<double>().ToArray();  // descending, r + 1 values
            var (edge, beyond) = largest ? (values[rank - 1], values[rank]) : (values[1], values[0]);
            gap = Math.Abs(edge - beyond) / Math.Max(Math.Max(edge, beyond), double.Epsilon);
            if (gap < MinimumRelativeGap)
            {
                return Failed(it, residual, gap, $"the r-th and (r+1)-th singular values are too close (relative gap {gap:G3} < {MinimumRelativeGap:G0}) for the adapter's subspace to be well defined");
            }

            var keep = largest ? 0 : 1;                           // drop the (r+1)-th
            var kSide = vk[.., keep..(keep + rank)];
            var bigSide = uBig[.., keep..(keep + rank)];
            var (u, v) = tall ? (bigSide, kSide) : (kSide, bigSide);
            return new Result(
                u.MoveToOuterDisposeScope(), s[start..(start + rank)].MoveToOuterDisposeScope(), v.MoveToOuterDisposeScope(), it, residual, gap, null);
        }

        return Failed(maxIterations, residual, gap, $"not converged after {maxIterations} iterations (residual {residual:G3} > tolerance {tolerance:G3})");
    }

    private static Result Failed(int iterations, double residual, double gap, string reason) => new(null, null, null, iterations, residual, gap, reason);
}
