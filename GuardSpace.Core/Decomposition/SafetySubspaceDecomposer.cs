using GuardSpace.Diagnostics;
using GuardSpace.Internal;
using GuardSpace.Projection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using TorchSharp;
using static TorchSharp.torch;

namespace GuardSpace.Decomposition;

/// <summary>
/// The covariance-preconditioned SVD of GuardSpace stage I (and the plain-SVD baselines).
/// <list type="number">
/// <item>Damping: <c>C_l = C + l mean(diag C) I</c>, l doubling from <see cref="SafetySubspaceOptions.InitialDamping"/>
/// until the Cholesky factor <c>L</c> of <c>C_l</c> exists and solves with it are accurate.</item>
/// <item>Thin SVD <c>W C_l = U S V^T</c>, S descending; or, by <see cref="SafetySubspaceOptions.Solver"/>, only the r
/// extreme triplets by an iterative solver that falls back to the thin SVD when it cannot vouch for its result.</item>
/// <item>Only the r selected columns are back-transformed, <c>V^_r = C_l^-1 V_r</c>, by a Cholesky solve (no inverse is formed).</item>
/// <item><c>B0 = U_r sqrt(S_r)</c>, <c>A0 = sqrt(S_r) V^_r^T</c>, residual <c>W - B0 A0</c> (or <c>W - B0 A0 P</c>).</item>
/// </list>
/// The maths runs in <see cref="SafetySubspaceOptions.ComputeType"/> on the weight's device; the residual is cast back
/// to the weight's dtype, the factors too except over a half-precision weight, where they stay float32.
/// </summary>
public sealed class SafetySubspaceDecomposer : ISafetySubspaceDecomposer
{
    private const int ProbeColumns = 4;
    private const int AutoMinimumWidth = 512;
    private const int AutoWidthPerRank = 32;
    private readonly ILogger _logger;

    /// <summary>Creates a decomposer.</summary>
    /// <param name="options">The options (validated here); defaults when null.</param>
    /// <param name="logger">Receives damping and conditioning reports.</param>
    public SafetySubspaceDecomposer(SafetySubspaceOptions? options = null, ILogger? logger = null)
    {
        Options = options ?? new SafetySubspaceOptions();
        Options.Validate();
        _logger = logger ?? NullLogger.Instance;
    }

    /// <inheritdoc />
    public SafetySubspaceOptions Options { get; }

    /// <inheritdoc />
    public LayerDecomposition Decompose(
        string layerName,
        Tensor weight,
        Tensor? covariance,
        int rank,
        INullSpaceProjector? projector = null,
        CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(layerName);
        ArgumentNullException.ThrowIfNull(weight);
        var method = Options.Method;
        ValidateInputs(layerName, weight, covariance, rank, projector, method);
        cancellationToken.ThrowIfCancellationRequested();

        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var computeType = Options.ComputeType;
        var w = weight.detach().to_type(computeType);

        var (m, n) = (w.shape[0], w.shape[1]);
        var solver = ChooseSolver(Options.Solver, method, m, n, rank);
        // The iterative solver works in float64 whatever ComputeType: M's float32 rounding (1e-7 ||M||) would swamp the
        // smallest triplets. M = W C_l is formed once, in the type its solver needs.
        var productType = solver == DecompositionSolver.Iterative ? ScalarType.Float64 : computeType;

        Tensor? choleskyFactor = null;
        double damping = 0, dampingAbsolute = 0, condition = double.NaN, residual = double.NaN;
        var doublings = 0;
        Tensor product;
        if (method.UsesCovariance())
        {
            var c = covariance!.detach().to(computeType, w.device);
            Tensor dampedCovariance;
            (dampedCovariance, choleskyFactor, damping, dampingAbsolute, doublings, condition, residual) = Damp(layerName, c, cancellationToken);
            cancellationToken.ThrowIfCancellationRequested();
            product = w.to_type(productType).mm(dampedCovariance.to_type(productType));
        }
        else
        {
            product = w.to_type(productType);
        }

        var k = (int)Math.Min(m, n);
        var first = method.TakesSmallest() ? k - rank : 0;
        var indices = Enumerable.Range(first, rank).ToArray();
        Tensor uSelected, sSelected, vSelected;                                     // m x r, r, n x r; descending
        double[] singularValues;
        var iterations = 0;
        var solverResidual = double.NaN;
        string? fallbackReason = null;
        if (solver == DecompositionSolver.Iterative)
        {
            var found = ExtremeSingularTriplets.Compute(product, rank, !method.TakesSmallest(), Options.IterativeTolerance, Options.IterativeMaxIterations, cancellationToken);
            iterations = found.Iterations;
            solverResidual = found.Residual;
            if (found.Converged)
            {
                uSelected = found.U!.to_type(computeType);
                sSelected = found.S!.to_type(computeType);
                vSelected = found.V!.to_type(computeType);
                singularValues = Enumerable.Repeat(double.NaN, k).ToArray();      // only the adapter's values are known
                var values = found.S!.cpu().data<double>().ToArray();
                for (var i = 0; i < rank; i++)
                {
                    singularValues[first + i] = values[i];
                }
            }
            else
            {
                fallbackReason = found.FailureReason;
                Log.IterativeSolverFellBack(_logger, layerName, fallbackReason!, found.Iterations);
                solver = DecompositionSolver.FullSvd;
                (uSelected, sSelected, vSelected, singularValues) = FullSvd(product.to_type(computeType), first, rank);
            }
        }
        else
        {
            (uSelected, sSelected, vSelected, singularValues) = FullSvd(product, first, rank);
        }

        var known = solver == DecompositionSolver.Iterative ? indices.Select(i => singularValues[i]) : singularValues;
        if (known.Any(v => !double.IsFinite(v)))
        {
            throw new ArithmeticException($"Layer '{layerName}': the SVD produced non-finite singular values. Check the weight and covariance, or decompose in Float64.");
        }

        var sqrtS = sSelected.sqrt();
        var adapterB = uSelected * sqrtS.unsqueeze(0);                             // m x r
        var vHat = choleskyFactor is null ? vSelected : CholeskySolve(vSelected, choleskyFactor); // C_l^-1 V_r
        var adapterA = (vHat * sqrtS.unsqueeze(0)).T.contiguous();                 // r x n
        if (projector is not null)
        {
            projector.ProjectRowsInPlace(adapterA);
        }

        var residualWeight = w - adapterB.mm(adapterA);
        var diagnostics = new DecompositionDiagnostics(layerName, method, singularValues, indices, damping, dampingAbsolute, doublings, condition, residual)
        {
            Solver = solver,
            SolverIterations = iterations,
            SolverResidual = solverResidual,
            SolverFallbackReason = fallbackReason,
        };
        Log.LayerDecomposed(_logger, layerName, method.ToString(), rank, solver.ToString(), new SpectrumSummary(singularValues[indices[0]], singularValues[indices[^1]], damping, condition));

        var dtype = weight.dtype;
        var factorType = AdapterPrecision.FactorType(dtype);
        return new LayerDecomposition(
            adapterB.to_type(factorType).contiguous().MoveToOuterDisposeScope(),
            adapterA.to_type(factorType).contiguous().MoveToOuterDisposeScope(),
            residualWeight.to_type(dtype).contiguous().MoveToOuterDisposeScope(),
            diagnostics,
            projector is not null);
    }

    /// <summary>
    /// The solver <see cref="DecompositionSolver.Auto"/> stands for: iterative when the method takes the r smallest
    /// components, <c>min(m, n) &gt;= 512</c>, <c>r &lt;= min(m, n) / 32</c> and the layer is near square
    /// (<c>max(m, n) &lt;= 1.5 min(m, n)</c>); the full SVD otherwise. Measured (docs/benchmarks.md): the smallest-end
    /// solver wins from k = 512, r = 16 on (0.49-0.53x the official pipeline at 2048 and 4096 square) and loses at r = k / 8.
    /// On rectangular layers the smallest singular values of <c>W C</c> bunch up at the lower edge of the spectrum, so
    /// inverse iteration crawls: 768 x 512 needed 40 iterations, and the Llama-2-7B gate/up (11008 x 4096) and down
    /// (4096 x 11008) shapes did not converge in 100 and fell back, paying the iterations and the SVD. The largest end
    /// converges slowly on weight-like spectra (30-100 iterations) and lost to the full SVD everywhere, so Auto never picks it.
    /// </summary>
    internal static DecompositionSolver ChooseSolver(DecompositionSolver requested, DecompositionMethod method, long m, long n, int rank)
    {
        if (requested != DecompositionSolver.Auto)
        {
            return requested;
        }

        var (k, big) = (Math.Min(m, n), Math.Max(m, n));
        var nearSquare = 2 * big <= 3 * k;
        return method.TakesSmallest() && k >= AutoMinimumWidth && (long)rank * AutoWidthPerRank <= k && nearSquare
            ? DecompositionSolver.Iterative
            : DecompositionSolver.FullSvd;
    }

    /// <summary>One thin SVD of <paramref name="product"/>; the r components from <paramref name="first"/> on, and every singular value.</summary>
    private static (Tensor U, Tensor S, Tensor V, double[] SingularValues) FullSvd(Tensor product, int first, int rank)
    {
        var (u, s, vh) = linalg.svd(product, fullMatrices: false);
        var singularValues = s.to_type(ScalarType.Float64).cpu().data<double>().ToArray();
        var selected = torch.arange(first, first + rank, dtype: ScalarType.Int64, device: product.device);
        return (u.index_select(1, selected), s.index_select(0, selected), vh.index_select(0, selected).T, singularValues);
    }

    /// <summary>
    /// <c>(L L^T)^-1 B</c> by two triangular solves. libtorch's <c>cholesky_solve</c> gives the same result but took 15-31 ms
    /// for 4-16 columns at n = 2048 on the CPU, where the two solves take 1-2.5 ms.
    /// </summary>
    private static Tensor CholeskySolve(Tensor b, Tensor lower) =>
        linalg.solve_triangular(lower.T, linalg.solve_triangular(lower, b, upper: false), upper: true);

    private (Tensor Damped, Tensor Factor, double Damping, double Absolute, int Doublings, double Condition, double Residual) Damp(
        string layerName, Tensor c, CancellationToken cancellationToken)
    {
        var n = c.shape[0];
        var meanDiagonal = c.diagonal().mean().ToDouble();
        if (!(meanDiagonal > 0))
        {
            throw new ArgumentException(
                $"Layer '{layerName}': the safety covariance has a zero diagonal (no activation reached this layer). " +
                "Run the safety prompts through the model with the collector attached before decomposing.");
        }

        // Fixed probes make the acceptance test deterministic.
        var generator = new Generator(0x5AFE, c.device);
        var probes = randn(n, ProbeColumns, dtype: c.dtype, device: c.device, generator: generator);
        var probeNorm = probes.norm().ToDouble();
        var l = Options.InitialDamping;
        for (var doublings = 0; doublings <= Options.MaxDampingDoublings; doublings++, l *= 2)
        {
            cancellationToken.ThrowIfCancellationRequested();
            var absolute = l * meanDiagonal;
            var damped = c.clone();
            damped.diagonal().add_(absolute);
            var (factor, info) = linalg.cholesky_ex(damped);
            if (info.ToInt32() != 0)
            {
                continue;
            }

            var solved = CholeskySolve(probes, factor);
            var residual = (damped.mm(solved) - probes).norm().ToDouble() / probeNorm;
            if (!(residual < Options.DampingResidualTolerance))
            {
                continue;
            }

            var diagonal = factor.diagonal().abs();
            var ratio = diagonal.max().ToDouble() / diagonal.min().ToDouble();
            if (doublings > 0)
            {
                Log.DampingIncreased(_logger, layerName, l, doublings);
            }

            return (damped, factor, l, absolute, doublings, ratio * ratio, residual);
        }

        throw new ArithmeticException(
            $"Layer '{layerName}': the safety covariance stayed ill-conditioned after {Options.MaxDampingDoublings} doublings of the damping " +
            $"(last l = {l / 2:G3}). Check it for extreme values, or raise SafetySubspaceOptions.MaxDampingDoublings / InitialDamping.");
    }

    private void ValidateInputs(string layerName, Tensor weight, Tensor? covariance, int rank, INullSpaceProjector? projector, DecompositionMethod method)
    {
        if (weight.dim() != 2)
        {
            throw new ArgumentException($"Layer '{layerName}': the weight must be a matrix (out x in); got shape [{string.Join(", ", weight.shape)}].", nameof(weight));
        }

        if (!TensorChecks.IsFloatingPoint(weight.dtype))
        {
            throw new ArgumentException($"Layer '{layerName}': the weight has dtype {weight.dtype}; a floating-point weight is required.", nameof(weight));
        }

        var (m, n) = (weight.shape[0], weight.shape[1]);
        var maxRank = Math.Min(m, n);
        if (rank <= 0 || rank > maxRank)
        {
            throw new ArgumentOutOfRangeException(nameof(rank), rank,
                $"Layer '{layerName}': the adapter rank must be between 1 and min(out, in) = {maxRank} for a {m} x {n} weight; got {rank}. Choose a rank in that range.");
        }

        TensorChecks.ThrowIfNonFinite(weight, layerName, "the weight", "Repair or reload the model's weights before decomposing.");
        if (method.UsesCovariance())
        {
            if (covariance is null)
            {
                throw new ArgumentNullException(nameof(covariance),
                    $"Layer '{layerName}': {method} needs the safety covariance of this layer's input. Collect it with ActivationCovarianceCollector, or use a plain method (PlainLargest / PlainSmallest).");
            }

            TensorChecks.ThrowIfNotSquare(covariance, n, layerName, "the safety covariance", "Collect it on this layer's input (n = in_features).");
            TensorChecks.ThrowIfNonFinite(covariance, layerName, "the safety covariance", "Check the model and the calibration prompts: some activation was not finite.");
            TensorChecks.ThrowIfNotSymmetric(covariance, layerName, "the safety covariance");
        }

        if (projector is not null && projector.InputWidth != n)
        {
            throw new ArgumentException($"Layer '{layerName}': the projector '{projector.Name}' is for width {projector.InputWidth}, the weight's input width is {n}. Fit it on this layer's harmful covariance.", nameof(projector));
        }
    }
}
