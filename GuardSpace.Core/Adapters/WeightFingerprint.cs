using TorchSharp;
using static TorchSharp.torch;

namespace GuardSpace.Adapters;

/// <summary>
/// A cheap fingerprint of a guarded layer's ORIGINAL weight, saved in the adapter config so that <c>Load</c> can refuse
/// a model whose weights are not the ones the adapter was made from: the values of <see cref="SampleCount"/> elements at
/// fixed pseudo-random positions (the k-th position is the k-th output of SplitMix64 seeded with 0, modulo the number
/// of elements, in row-major order). Reading 64 elements costs nothing next to a load, where hashing every weight would
/// read all of them (gigabytes for a large model). It tells apart another checkpoint, a fine-tuned or re-initialised copy and most
/// edits that touch many elements; an edit of a few elements can slip through.
/// </summary>
/// <param name="Dtype">The weight's dtype when the fingerprint was taken (a <see cref="ScalarType"/> name).</param>
/// <param name="Samples">The sampled values, exactly (every float16, bfloat16 and float32 value is a double).</param>
internal sealed record WeightFingerprint(string Dtype, IReadOnlyList<double> Samples)
{
    public const int SampleCount = 64;

    /// <summary>Samples <paramref name="weight"/> (any device, any floating dtype).</summary>
    public static WeightFingerprint Of(Tensor weight)
    {
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var positions = tensor(Positions(weight.NumberOfElements), ScalarType.Int64).to(weight.device);
        var values = weight.detach().reshape(-1).index_select(0, positions).to(ScalarType.Float64, CPU);
        return new WeightFingerprint(weight.dtype.ToString(), values.data<double>().ToArray());
    }

    /// <summary>
    /// Compares with <paramref name="weight"/>. When the dtypes differ, both sides are first rounded to the coarser of the
    /// two, so a model that was only converted (float32 to bfloat16, say) still matches.
    /// </summary>
    /// <returns>How many samples differ, and the largest difference relative to the largest saved sample.</returns>
    public (int Differing, double RelativeDifference) Compare(Tensor weight)
    {
        var current = Of(weight);
        var common = Coarser(ParseDtype(Dtype), weight.dtype);
        var saved = RoundTo(Samples, common);
        var now = RoundTo(current.Samples, common);
        if (saved.Length != now.Length)
        {
            return (SampleCount, double.PositiveInfinity);
        }

        var scale = saved.Max(Math.Abs);
        var differing = 0;
        var largest = 0.0;
        for (var i = 0; i < saved.Length; i++)
        {
            if (saved[i].Equals(now[i]))
            {
                continue;
            }

            differing++;
            largest = Math.Max(largest, Math.Abs(saved[i] - now[i]) / (scale > 0 ? scale : 1));
        }

        return (differing, largest);
    }

    /// <summary>The sample positions for a weight of <paramref name="elements"/> elements.</summary>
    internal static long[] Positions(long elements)
    {
        var positions = new long[SampleCount];
        ulong state = 0;
        for (var k = 0; k < SampleCount; k++)
        {
            // SplitMix64 (Steele, Lea and Flood 2014): a fixed, portable sequence.
            state += 0x9E3779B97F4A7C15UL;
            var z = state;
            z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
            z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
            z ^= z >> 31;
            positions[k] = (long)(z % (ulong)elements);
        }

        return positions;
    }

    private static ScalarType ParseDtype(string name) =>
        Enum.TryParse<ScalarType>(name, out var type) && Internal.TensorChecks.IsFloatingPoint(type)
            ? type
            : throw new InvalidDataException($"'{name}' is not a floating-point dtype.");

    private static ScalarType Coarser(ScalarType a, ScalarType b) => MantissaBits(a) <= MantissaBits(b) ? a : b;

    private static int MantissaBits(ScalarType type) => type switch
    {
        ScalarType.BFloat16 => 8,
        ScalarType.Float16 => 11,
        ScalarType.Float32 => 24,
        _ => 53,
    };

    private static double[] RoundTo(IReadOnlyList<double> values, ScalarType type)
    {
        using var scope = NewDisposeScope();
        return tensor(values.ToArray(), ScalarType.Float64).to_type(type).to_type(ScalarType.Float64).data<double>().ToArray();
    }
}
