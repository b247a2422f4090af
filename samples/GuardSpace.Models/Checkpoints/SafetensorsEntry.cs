using static TorchSharp.torch;

namespace GuardSpace.Models.Checkpoints;

/// <summary>One tensor of a safetensors file: its dtype name as written (<c>F32</c>, <c>BF16</c>, ...), shape and byte range in the data section.</summary>
/// <param name="Name">The tensor's key.</param>
/// <param name="Dtype">The dtype name in the header.</param>
/// <param name="Shape">The shape.</param>
/// <param name="Begin">First byte, relative to the data section.</param>
/// <param name="End">One past the last byte, relative to the data section.</param>
public sealed record SafetensorsEntry(string Name, string Dtype, long[] Shape, long Begin, long End)
{
    /// <summary>The floating-point dtypes a checkpoint may hold here, with their torch types.</summary>
    public static IReadOnlyDictionary<string, ScalarType> FloatingTypes { get; } = new Dictionary<string, ScalarType>(StringComparer.Ordinal)
    {
        ["F64"] = ScalarType.Float64,
        ["F32"] = ScalarType.Float32,
        ["F16"] = ScalarType.Float16,
        ["BF16"] = ScalarType.BFloat16,
    };

    /// <summary>The shape as text, <c>[a, b]</c>.</summary>
    public string ShapeText => $"[{string.Join(", ", Shape)}]";
}
