using static TorchSharp.torch;

namespace GuardSpace.Internal;

/// <summary>
/// The one place that decides in which dtype adapter factors live and adapter arithmetic runs. Half-precision factors
/// lose the null-space guarantee to rounding and make Adam's default eps (1e-8) round to zero, so over a float16 or
/// bfloat16 base weight the factors (and their projection, drift and penalty arithmetic) stay in float32 and the forward
/// casts, as PEFT does by default. Every other floating dtype is kept as it is.
/// </summary>
internal static class AdapterPrecision
{
    /// <summary>The factor dtype for a base weight of <paramref name="weightType"/>: float32 for half precision, else the weight's own.</summary>
    public static ScalarType FactorType(ScalarType weightType) => ComputeType(weightType);

    /// <summary>The dtype adapter arithmetic on a tensor of <paramref name="type"/> runs in: at least float32.</summary>
    public static ScalarType ComputeType(ScalarType type) => TensorChecks.IsHalfPrecision(type) ? ScalarType.Float32 : type;
}
