using static TorchSharp.torch;

namespace GuardSpace.Internal;

/// <summary>Checks that what is passed as a covariance can be a sum of <c>x x^T</c>.</summary>
internal static class CovarianceChecks
{
    /// <summary>The unit of rounding (machine epsilon) of a floating-point dtype.</summary>
    public static double Epsilon(ScalarType type) => type switch
    {
        ScalarType.Float64 => 2.2e-16,
        ScalarType.Float16 => 9.8e-4,
        ScalarType.BFloat16 => 7.8e-3,
        _ => 1.2e-7,
    };

    /// <summary>
    /// Throws when the eigenvalues <paramref name="mu"/> (ascending) hold a clearly negative one: below
    /// <c>-tolerance * max |mu|</c>, with a tolerance of 1000 units of rounding of the coarser of the covariance's dtype and
    /// the dtype it was decomposed in (2e-13 in float64, 1e-4 in float32). A sum of <c>x x^T</c> has none: such a matrix
    /// would count its negative directions as null directions.
    /// </summary>
    public static void ThrowIfIndefinite(double[] mu, string layer, ScalarType covarianceType, ScalarType computeType)
    {
        var scale = Math.Max(Math.Abs(mu[0]), Math.Abs(mu[^1]));
        var epsilon = Math.Max(Epsilon(covarianceType), Epsilon(computeType));
        var tolerance = 1000 * epsilon * scale;
        if (!(scale > 0) || mu[0] >= -tolerance)
        {
            return;
        }

        var negative = mu.Count(v => v < -tolerance);
        throw new ArgumentException(
            $"Layer '{layer}': the harmful covariance is not positive semi-definite ({negative} eigenvalue(s) below zero, the smallest {mu[0]:G4} " +
            $"against a largest magnitude of {scale:G4}), so it is not a sum of x x^T. Pass the covariance collected by ActivationCovarianceCollector " +
            "(or sum x x^T over the harmful-prompt activations yourself), not a difference of covariances or a negated one.");
    }
}
