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
        // Screen first: one reduction, no mask. The sum of finite values is finite unless it overflows, and then the exact
        // test below decides; a NaN or an infinity always makes the sum non-finite.
        if (double.IsFinite(tensor.sum(ScreenType(tensor.dtype)).ToDouble()) || isfinite(tensor).all().item<bool>())
        {
            return;
        }

        var nan = isnan(tensor).sum().item<long>();
        var inf = isinf(tensor).sum().item<long>();
        throw new ArgumentException($"Layer '{layer}': {tensorName} contains {nan} NaN and {inf} infinite values. {fix}");
    }

    public static void ThrowIfNotSquare(Tensor matrix, long expected, string layer, string tensorName, string fix)
    {
        if (matrix.dim() != 2 || matrix.shape[0] != expected || matrix.shape[1] != expected)
        {
            throw new ArgumentException(
                $"Layer '{layer}': {tensorName} has shape [{string.Join(", ", matrix.shape)}], expected [{expected}, {expected}] (the layer's input width). {fix}");
        }
    }

    /// <summary>Throws when the matrix is not symmetric to <paramref name="relativeTolerance"/>; returns max |C - C^T| (0: exactly symmetric).</summary>
    public static double ThrowIfNotSymmetric(Tensor matrix, string layer, string tensorName, double relativeTolerance = 1e-6)
    {
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        var m = IsHalfPrecision(matrix.dtype) ? matrix.to_type(ScalarType.Float32) : matrix;
        var scale = m.abs().max().ToDouble();
        var asym = MaxAsymmetry(m);
        if (asym > relativeTolerance * Math.Max(scale, double.Epsilon))
        {
            throw new ArgumentException(
                $"Layer '{layer}': {tensorName} is not symmetric (max |C - C^T| = {asym:G3} against max |C| = {scale:G3}). " +
                "Pass a covariance sum of x x^T as collected by ActivationCovarianceCollector, or symmetrise it with (C + C^T) / 2.");
        }

        return asym;
    }

    /// <summary>
    /// max |C - C^T| over the upper triangle, one block row at a time: the block row against the matching block column read
    /// transposed. In the matrix's own (float32 or float64) type, which represents the difference of two of its entries
    /// to within one rounding, and without an n x n temporary (485 MB at width 11008) or a float64 copy.
    /// </summary>
    internal static double MaxAsymmetry(Tensor m)
    {
        const long block = 128;
        var n = m.shape[0];
        double max = 0;
        for (long i = 0; i < n; i += block)
        {
            using var step = NewDisposeScope();
            var rows = Math.Min(block, n - i);
            var upper = m.narrow(0, i, rows).narrow(1, i, n - i);          // rows x (n - i)
            var lower = m.narrow(0, i, n - i).narrow(1, i, rows).T;        // the same entries of C^T
            max = Math.Max(max, (upper - lower).abs().max().ToDouble()); // Math.Max keeps a NaN
        }

        return max;
    }

    private static ScalarType ScreenType(ScalarType dtype) => dtype == ScalarType.Float64 ? ScalarType.Float64 : ScalarType.Float32;

    public static bool IsHalfPrecision(ScalarType type) => type is ScalarType.Float16 or ScalarType.BFloat16;

    public static bool IsFloatingPoint(ScalarType type) => type is ScalarType.Float16 or ScalarType.BFloat16 or ScalarType.Float32 or ScalarType.Float64;
}
