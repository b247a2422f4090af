using static TorchSharp.torch;

namespace GuardSpace.Internal;

/// <summary>
/// The dtype adapter factors live in. Half-precision factors lose the null-space guarantee to rounding and make Adam's
/// default eps (1e-8) round to zero, so over a float16 or bfloat16 base weight the factors (and their projection) stay in
/// float32 and the forward casts, as PEFT does by default.
/// </summary>
internal static class AdapterPrecision
{
    /// <summary>The factor dtype for a base weight of <paramref name="weightType"/>: float32 for half precision, else the weight's own.</summary>
    public static ScalarType FactorType(ScalarType weightType) => TensorChecks.IsHalfPrecision(weightType) ? ScalarType.Float32 : weightType;
}
