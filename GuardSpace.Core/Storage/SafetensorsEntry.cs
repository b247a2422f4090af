using static TorchSharp.torch;

namespace GuardSpace.Storage;

/// <summary>One tensor of a safetensors file, as its header describes it (checked by <see cref="SafetensorsReader.Open"/>).</summary>
/// <param name="Name">The tensor's key.</param>
/// <param name="Dtype">The dtype name in the header: <c>F64</c>, <c>F32</c>, <c>F16</c>, <c>BF16</c>, <c>I64</c>, <c>I32</c>, <c>I16</c>, <c>I8</c>, <c>U8</c> or <c>BOOL</c>.</param>
/// <param name="Type">The torch type of <paramref name="Dtype"/>.</param>
/// <param name="Shape">The shape.</param>
/// <param name="Begin">First byte, relative to the data section.</param>
/// <param name="End">One past the last byte, relative to the data section.</param>
public sealed record SafetensorsEntry(string Name, string Dtype, ScalarType Type, long[] Shape, long Begin, long End)
{
    /// <summary>The number of bytes the tensor holds.</summary>
    public long ByteLength => End - Begin;

    /// <summary>Whether the tensor holds floating-point values (F64, F32, F16 or BF16).</summary>
    public bool IsFloatingPoint => Type is ScalarType.Float64 or ScalarType.Float32 or ScalarType.Float16 or ScalarType.BFloat16;

    /// <summary>The shape as text, <c>[a, b]</c>.</summary>
    public string ShapeText => $"[{string.Join(", ", Shape)}]";
}
