using TorchSharp;
using static TorchSharp.torch;

namespace GuardSpace.Models.Llama;

/// <summary>
/// Rotary position embedding in Hugging Face's layout (the two halves of a head rotate together, <c>rotate_half</c>):
/// <c>x cos + rotate_half(x) sin</c> with angle <c>position * inv_freq[i]</c> for the pair (i, i + d/2).
/// </summary>
public sealed class RotaryPositions
{
    private readonly float[] _inverseFrequencies32;
    private readonly double[] _inverseFrequencies64;

    /// <summary>The inverse frequencies of <paramref name="config"/> (theta, head width, scaling).</summary>
    public RotaryPositions(LlamaConfig config)
    {
        ArgumentNullException.ThrowIfNull(config);
        var d = config.HeadDimension;
        var frequencies = Enumerable.Range(0, d / 2).Select(i => 1.0 / Math.Pow(config.RopeTheta, 2.0 * i / d)).ToArray();
        _inverseFrequencies64 = config.RopeScaling?.Apply(frequencies) ?? frequencies;
        _inverseFrequencies32 = [.. _inverseFrequencies64.Select(f => (float)f)];
    }

    /// <summary>The inverse frequency of each rotated pair (d/2 values).</summary>
    public IReadOnlyList<double> InverseFrequencies => _inverseFrequencies64;

    /// <summary>
    /// Cos and sin tables of shape [batch or 1, 1, seq, d] for <paramref name="positions"/> ([batch or 1, seq], int64), in
    /// <paramref name="dtype"/>. The angles are computed in float64 for float64 models and in float32 otherwise (as
    /// Hugging Face does), so half-precision models do not lose position resolution.
    /// </summary>
    public (Tensor Cos, Tensor Sin) Tables(Tensor positions, ScalarType dtype)
    {
        using var scope = NewDisposeScope();
        var compute = dtype == ScalarType.Float64 ? ScalarType.Float64 : ScalarType.Float32;
        var inverse = compute == ScalarType.Float64
            ? tensor(_inverseFrequencies64, device: positions.device)
            : tensor(_inverseFrequencies32, device: positions.device);
        var angles = positions.to_type(compute).unsqueeze(-1) * inverse;   // [b, t, d/2]
        var doubled = cat([angles, angles], -1).unsqueeze(1);                // [b, 1, t, d]
        return (doubled.cos().to_type(dtype).MoveToOuterDisposeScope(), doubled.sin().to_type(dtype).MoveToOuterDisposeScope());
    }

    /// <summary>Rotates <paramref name="x"/> ([b, heads, t, d]) by the tables of <see cref="Tables"/>.</summary>
    public static Tensor Apply(Tensor x, Tensor cos, Tensor sin)
    {
        using var scope = NewDisposeScope();
        var half = x.shape[^1] / 2;
        var rotated = cat([-x.narrow(-1, half, half), x.narrow(-1, 0, half)], -1);
        return ((x * cos) + (rotated * sin)).MoveToOuterDisposeScope();
    }
}
