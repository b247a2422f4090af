using TorchSharp;
using static TorchSharp.torch;

namespace GuardSpace.Behaviour;

/// <summary>
/// A cheap harmfulness scorer for the <see cref="PoisonScreen"/> that needs no generation: the difference of the mean
/// activations on harmful and on benign calibration prompts (the "refusal direction"), and the projection of a prompt's
/// activation on it. Unlike the likelihood of a refusal, it reads what the model recognises in the prompt, not whether it
/// would refuse, so prompts the aligned model refuses only because they are new to it (a task it cannot do yet) score
/// low. The caller chooses the activation (for example the input of a late layer at the prompt's last token).
/// </summary>
public sealed class RefusalDirection : IDisposable
{
    private readonly Tensor _unit;
    private readonly Tensor _midpoint;

    private RefusalDirection(Tensor unit, Tensor midpoint)
    {
        _unit = unit;
        _midpoint = midpoint;
    }

    /// <summary>The activation width d.</summary>
    public long Width => _unit.shape[0];

    /// <summary>
    /// Fits the direction <c>u = (mean_h - mean_b) / ||mean_h - mean_b||</c> in float64 on the features' device.
    /// </summary>
    /// <param name="harmfulFeatures">One activation per harmful calibration prompt, [n, d].</param>
    /// <param name="benignFeatures">One activation per benign calibration prompt, [m, d].</param>
    /// <exception cref="ArgumentException">A set is not [rows, d] with rows &gt; 0, the widths differ, a value is not finite, or the two means coincide.</exception>
    public static RefusalDirection Fit(Tensor harmfulFeatures, Tensor benignFeatures)
    {
        Check(harmfulFeatures, nameof(harmfulFeatures), "harmful calibration features", null);
        Check(benignFeatures, nameof(benignFeatures), "benign calibration features", harmfulFeatures.shape[1]);
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var meanH = harmfulFeatures.detach().to_type(ScalarType.Float64).mean([0]);
        var meanB = benignFeatures.detach().to(ScalarType.Float64, harmfulFeatures.device).mean([0]);
        var difference = meanH - meanB;
        var norm = difference.norm().ToDouble();
        var scale = Math.Max(meanH.norm().ToDouble(), meanB.norm().ToDouble());
        if (!(norm > 1e-12 * Math.Max(scale, double.Epsilon)))
        {
            throw new ArgumentException("The harmful and benign calibration features have the same mean: there is no direction to screen along. Take the features from a layer where the model tells the two apart.", nameof(benignFeatures));
        }

        return new RefusalDirection((difference / norm).DetachFromDisposeScope(), ((meanH + meanB) / 2).DetachFromDisposeScope());
    }

    /// <summary>
    /// The refusal score of each row: <c>(x - (mean_h + mean_b) / 2) . u</c>, positive on the harmful side of the midpoint.
    /// </summary>
    /// <param name="features">One activation per prompt, [k, d] (k may be 0).</param>
    /// <exception cref="ArgumentException">The features are not [k, d] of this width, or hold a value that is not finite.</exception>
    public double[] Score(Tensor features)
    {
        ObjectDisposedException.ThrowIf(_unit.IsInvalid, this);
        ArgumentNullException.ThrowIfNull(features);
        if (features.dim() != 2 || features.shape[1] != Width)
        {
            throw new ArgumentException($"Features to score must be [prompts, {Width}]; got [{string.Join(", ", features.shape)}]. Take them from the same layer and position as the calibration features.", nameof(features));
        }

        if (features.shape[0] == 0)
        {
            return [];
        }

        Check(features, nameof(features), "features to score", Width);
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var scores = (features.detach().to(ScalarType.Float64, _unit.device) - _midpoint).mv(_unit);
        return scores.cpu().data<double>().ToArray();
    }

    /// <inheritdoc />
    public void Dispose()
    {
        _unit.Dispose();
        _midpoint.Dispose();
    }

    private static void Check(Tensor features, string parameter, string what, long? width)
    {
        ArgumentNullException.ThrowIfNull(features, parameter);
        if (features.dim() != 2 || features.shape[0] == 0 || (width is { } w && features.shape[1] != w))
        {
            var expected = width is { } d ? $"[rows > 0, {d}]" : "[rows > 0, width]";
            throw new ArgumentException($"The {what} must be {expected}; got [{string.Join(", ", features.shape)}].", parameter);
        }

        using var scope = NewDisposeScope();
        if (!features.isfinite().all().ToBoolean())
        {
            throw new ArgumentException($"The {what} hold NaN or Inf: check the model's activations on those prompts.", parameter);
        }
    }
}
