using GuardSpace.Diagnostics;
using GuardSpace.Internal;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using TorchSharp;
using static TorchSharp.torch;

namespace GuardSpace.Projection;

/// <summary>
/// Fits and applies the harmful-resistant null-space projector of one layer: <c>eigh(C_h) = Q diag(mu) Q^T</c>,
/// null directions are the eigenvectors whose eigenvalue is under the threshold (<see cref="NullSpaceOptions"/>).
/// Stores whichever of the null basis <c>N</c> and the protected basis <c>R</c> is smaller and applies
/// <c>A P = (A N) N^T</c> or <c>A P = A - (A R) R^T</c>.
/// </summary>
public sealed class NullSpaceProjector : INullSpaceProjector
{
    private readonly Tensor _basis; // n x d, orthonormal columns

    private NullSpaceProjector(Tensor basis, NullSpaceDiagnostics diagnostics)
    {
        _basis = basis.DetachFromDisposeScope();
        Diagnostics = diagnostics;
    }

    /// <inheritdoc />
    public string Name => Diagnostics.Name;

    /// <inheritdoc />
    public long InputWidth => Diagnostics.InputWidth;

    /// <inheritdoc />
    public long NullDimension => Diagnostics.NullDimension;

    /// <inheritdoc />
    public NullSpaceDiagnostics Diagnostics { get; }

    /// <inheritdoc />
    public Device Device => _basis.device;

    /// <inheritdoc />
    public ScalarType BasisType => _basis.dtype;

    /// <inheritdoc />
    public long StoredBytes => _basis.NumberOfElements * _basis.ElementSize;

    /// <summary>The stored orthonormal basis (n x d): spans the null space when <see cref="NullSpaceDiagnostics.StoresNullBasis"/>, else its complement. Read-only view; do not dispose.</summary>
    public Tensor Basis => _basis;

    /// <inheritdoc />
    public Tensor ExportBasis() => _basis.clone();

    /// <summary>
    /// Fits the projector of one layer from the covariance <paramref name="harmfulCovariance"/> (n x n sum of
    /// <c>x x^T</c> over harmful-prompt tokens). The basis stays on the covariance's device.
    /// </summary>
    /// <param name="name">The layer or covariance group (the projector's name).</param>
    /// <param name="harmfulCovariance">The n x n covariance sum.</param>
    /// <param name="options">Threshold rule and empty-null-space policy; defaults when null.</param>
    /// <param name="logger">Receives the fit and the empty-null-space warnings.</param>
    /// <param name="layers">Every layer that shares this covariance, named in the warnings; default just <paramref name="name"/>.</param>
    /// <exception cref="ArgumentException">The covariance is not square, not symmetric, not finite, not positive semi-definite, or zero.</exception>
    /// <exception cref="InvalidOperationException">The null space is empty and the policy is <see cref="EmptyNullSpacePolicy.Throw"/>.</exception>
    public static NullSpaceProjector Fit(string name, Tensor harmfulCovariance, NullSpaceOptions? options = null, ILogger? logger = null, IReadOnlyList<string>? layers = null) =>
        Fit(name, harmfulCovariance, options, logger, layers, keepFactor: false).Projector;

    /// <summary>
    /// <see cref="Fit(string, Tensor, NullSpaceOptions?, ILogger?, IReadOnlyList{string}?)"/>, optionally also returning the factor of the
    /// harmful covariance restricted to the null space (for the drift monitor and penalty) from the same eigendecomposition.
    /// </summary>
    internal static (NullSpaceProjector Projector, HarmfulCovarianceFactor? Factor) Fit(
        string name, Tensor harmfulCovariance, NullSpaceOptions? options, ILogger? logger, IReadOnlyList<string>? layers, bool keepFactor)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(name);
        ArgumentNullException.ThrowIfNull(harmfulCovariance);
        options ??= new NullSpaceOptions();
        options.Validate();
        logger ??= NullLogger.Instance;

        var n = harmfulCovariance.dim() == 2 ? harmfulCovariance.shape[0] : -1;
        TensorChecks.ThrowIfNotSquare(harmfulCovariance, n, name, "harmful covariance", "Pass the n x n covariance collected on the layer's input.");
        TensorChecks.ThrowIfNonFinite(harmfulCovariance, name, "harmful covariance", "Check the model and the harmful prompts: a layer produced non-finite activations.");
        var asymmetry = TensorChecks.ThrowIfNotSymmetric(harmfulCovariance, name, "harmful covariance");

        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var c = harmfulCovariance.to_type(options.ComputeType);
        if (asymmetry != 0)
        {
            c = (c + c.T) * 0.5; // exact symmetry for eigh (a no-op, so skipped, when it already holds)
        }

        var (eigenvalues, eigenvectors) = linalg.eigh(c); // ascending
        var mu = eigenvalues.to_type(ScalarType.Float64).cpu().data<double>().ToArray();
        CovarianceChecks.ThrowIfIndefinite(mu, name, harmfulCovariance.dtype, options.ComputeType);
        var maxMu = mu[^1];
        if (!(maxMu > 0))
        {
            throw new ArgumentException(
                $"Layer '{name}': the harmful covariance is zero (no harmful activation reached this layer). " +
                "Run the harmful prompts through the model with the collector attached, or leave this layer unguarded.");
        }

        var rule = options.Rule;
        var (nullDim, threshold) = Split(mu, rule, options);
        var minimum = Math.Max(1, (long)Math.Ceiling(options.MinimumNullFraction * n));
        var fellBack = false;
        if (nullDim < minimum)
        {
            switch (options.EmptyPolicy)
            {
                case EmptyNullSpacePolicy.Throw:
                    throw new InvalidOperationException(
                        $"Layer '{name}': " + (nullDim == 0 ? $"the harmful activations span all {n} input directions under the {rule} rule (threshold {threshold:G3}), so there is no null space and the adapter could not move. "
                            : $"the {rule} rule (threshold {threshold:G3}) leaves {nullDim} of {n} input directions free, fewer than the minimum {minimum} (NullSpaceOptions.MinimumNullFraction). ") +
                        "Use fewer or narrower harmful prompts, a larger threshold, " +
                        "the EnergyFraction rule, or EmptyNullSpacePolicy.FreezeLayer / FallBackToEnergy.");
                case EmptyNullSpacePolicy.FallBackToEnergy when rule != NullSpaceThresholdRule.EnergyFraction:
                    // Only ever widen: a layer keeps its exact null space unless the energy rule frees more.
                    var (energyDim, energyThreshold) = Split(mu, NullSpaceThresholdRule.EnergyFraction, options);
                    if (energyDim > nullDim)
                    {
                        Log.NullSpaceFellBack(logger, Layers(name, layers), (int)nullDim, (int)energyDim, options.EnergyFraction);
                        (nullDim, threshold, rule, fellBack) = (energyDim, energyThreshold, NullSpaceThresholdRule.EnergyFraction, true);
                    }

                    break;
            }

            if (nullDim == 0)
            {
                Log.NullSpaceEmptyFrozen(logger, Layers(name, layers), (int)n);
            }
        }

        // Eigenvalues ascending: the first nullDim columns span the null space.
        var total = mu.Where(v => v > 0).Sum();
        var storesNull = nullDim <= n - nullDim;
        var basis = storesNull
            ? eigenvectors[.., ..(int)nullDim]
            : eigenvectors[.., (int)nullDim..];
        basis = basis.contiguous().MoveToOuterDisposeScope();

        var protectedEnergy = mu.Skip((int)nullDim).Where(v => v > 0).Sum() / total;
        var diagnostics = new NullSpaceDiagnostics(name, n, nullDim, rule, threshold, maxMu, protectedEnergy, storesNull, fellBack);
        Log.NullSpaceFitted(logger, name, (int)nullDim, (int)n, new ThresholdSummary(rule.ToString(), threshold), protectedEnergy);
        var factor = keepFactor ? HarmfulCovarianceFactor.FromEigen(name, eigenvectors, mu, nullDim) : null;
        return (new NullSpaceProjector(basis, diagnostics), factor);
    }

    private static string Layers(string name, IReadOnlyList<string>? layers) =>
        layers is { Count: > 0 } ? string.Join(", ", layers.Select(l => $"'{l}'")) : $"'{name}'";

    /// <summary>How many of the ascending eigenvalues <paramref name="mu"/> fall in the null space, and the threshold.</summary>
    internal static (long NullDimension, double Threshold) Split(double[] mu, NullSpaceThresholdRule rule, NullSpaceOptions options)
    {
        var maxMu = mu[^1];
        double threshold;
        switch (rule)
        {
            case NullSpaceThresholdRule.Relative:
                threshold = Math.Max(options.AbsoluteFloor, options.RelativeThreshold * maxMu);
                break;
            case NullSpaceThresholdRule.Absolute:
                threshold = options.AbsoluteThreshold;
                break;
            default:
                // Protect the fewest top directions whose eigenvalues hold EnergyFraction of the trace.
                var total = mu.Where(v => v > 0).Sum();
                double kept = 0;
                var protectedCount = 0;
                for (var i = mu.Length - 1; i >= 0 && kept < options.EnergyFraction * total; i--)
                {
                    kept += Math.Max(mu[i], 0);
                    protectedCount++;
                }

                var nullCount = mu.Length - protectedCount;
                threshold = nullCount > 0 ? mu[nullCount - 1] : double.NegativeInfinity;
                return (nullCount, threshold);
        }

        return (mu.Count(v => v <= threshold), threshold);
    }

    /// <inheritdoc />
    public void ProjectRowsInPlace(Tensor rows)
    {
        CheckRows(rows);
        using var noGrad = no_grad();
        if (NullDimension == 0)
        {
            rows.zero_();
            return;
        }

        if (NullDimension == InputWidth)
        {
            return; // P = I
        }

        using var scope = NewDisposeScope();
        if (rows.dtype == _basis.dtype && rows.device.SameAs(_basis.device))
        {
            var coefficients = rows.mm(_basis);
            if (Diagnostics.StoresNullBasis)
            {
                rows.copy_(coefficients.mm(_basis.T));
            }
            else
            {
                rows.addmm_(coefficients, _basis.T, beta: 1, alpha: -1);
            }
        }
        else
        {
            // Mixed dtypes (e.g. half-precision rows): project at the basis' precision, write back once.
            rows.copy_(ProjectAtBasisPrecision(rows));
        }
    }

    /// <inheritdoc />
    public Tensor ProjectRows(Tensor rows)
    {
        CheckRows(rows);
        using var noGrad = no_grad();
        if (NullDimension == 0)
        {
            return zeros_like(rows);
        }

        if (NullDimension == InputWidth)
        {
            return rows.clone();
        }

        using var scope = NewDisposeScope();
        return ProjectAtBasisPrecision(rows).to(rows.dtype, rows.device).MoveToOuterDisposeScope();
    }

    /// <inheritdoc />
    public INullSpaceProjector To(Device device, ScalarType basisType)
    {
        ArgumentNullException.ThrowIfNull(device);
        if (!TensorChecks.IsFloatingPoint(basisType))
        {
            throw new ArgumentException($"Projector '{Name}': basis type must be floating point; got {basisType}.", nameof(basisType));
        }

        // Half precision breaks idempotence (P^2 != P): keep at least float32.
        var type = AdapterPrecision.ComputeType(basisType);
        using var scope = NewDisposeScope();
        var basis = _basis.to(type, device).clone().MoveToOuterDisposeScope();
        return new NullSpaceProjector(basis, Diagnostics);
    }

    /// <summary>
    /// Builds a projector directly from an orthonormal basis (n x d) — used when loading a saved adapter.
    /// </summary>
    internal static NullSpaceProjector FromBasis(Tensor basis, NullSpaceDiagnostics diagnostics) => new(basis.clone(), diagnostics);

    /// <inheritdoc />
    public void Dispose() => _basis.Dispose();

    private Tensor ProjectAtBasisPrecision(Tensor rows)
    {
        var r = rows.to(_basis.dtype, _basis.device);
        var coefficients = r.mm(_basis);
        return Diagnostics.StoresNullBasis ? coefficients.mm(_basis.T) : r - coefficients.mm(_basis.T);
    }

    private void CheckRows(Tensor rows)
    {
        ArgumentNullException.ThrowIfNull(rows);
        if (rows.dim() != 2 || rows.shape[1] != InputWidth)
        {
            throw new ArgumentException(
                $"Projector '{Name}': rows have shape [{string.Join(", ", rows.shape)}], expected [k, {InputWidth}] " +
                "(the adapter's input-side factor A or its gradient).", nameof(rows));
        }

        if (!TensorChecks.IsFloatingPoint(rows.dtype))
        {
            throw new ArgumentException(
                $"Projector '{Name}': rows have dtype {rows.dtype}; projecting them in place would truncate the result. Pass floating-point rows (the adapter's A or its gradient).", nameof(rows));
        }
    }
}
