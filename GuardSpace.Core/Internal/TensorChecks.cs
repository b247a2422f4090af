using TorchSharp;
using static TorchSharp.torch;

namespace GuardSpace.Internal;

/// <summary>Argument checks on tensors whose messages name the layer, the tensor and the fix.</summary>
internal static class TensorChecks
{
    public static void ThrowIfNonFinite(Tensor tensor, string layer, string tensorName, string fix)
    {
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        if (!isfinite(tensor).all().item<bool>())
        {
            var nan = isnan(tensor).sum().item<long>();
            var inf = isinf(tensor).sum().item<long>();
            throw new ArgumentException($"Layer '{layer}': {tensorName} contains {nan} NaN and {inf} infinite values. {fix}");
        }
    }

    public static void ThrowIfNotSquare(Tensor matrix, long expected, string layer, string tensorName, string fix)
    {
        if (matrix.dim() != 2 || matrix.shape[0] != expected || matrix.shape[1] != expected)
        {
            throw new ArgumentException(
                $"Layer '{layer}': {tensorName} has shape [{string.Join(", ", matrix.shape)}], expected [{expected}, {expected}] (the layer's input width). {fix}");
        }
    }

    public static void ThrowIfNotSymmetric(Tensor matrix, string layer, string tensorName, double relativeTolerance = 1e-6)
    {
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        var m = matrix.to_type(ScalarType.Float64);
        var scale = m.abs().max().ToDouble();
        var asym = (m - m.T).abs().max().ToDouble();
        if (asym > relativeTolerance * Math.Max(scale, double.Epsilon))
        {
            throw new ArgumentException(
                $"Layer '{layer}': {tensorName} is not symmetric (max |C - C^T| = {asym:G3} against max |C| = {scale:G3}). " +
                "Pass a covariance sum of x x^T as collected by ActivationCovarianceCollector, or symmetrise it with (C + C^T) / 2.");
        }
    }

    public static bool IsHalfPrecision(ScalarType type) => type is ScalarType.Float16 or ScalarType.BFloat16;

    public static bool IsFloatingPoint(ScalarType type) => type is ScalarType.Float16 or ScalarType.BFloat16 or ScalarType.Float32 or ScalarType.Float64;
}
