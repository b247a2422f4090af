using static TorchSharp.torch;

namespace GuardSpace.Storage;

/// <summary>The safetensors dtype names this library reads and writes, with their torch types and element sizes.</summary>
internal static class SafetensorsDtypes
{
    /// <summary>The supported names, for error messages.</summary>
    public const string SupportedList = "F64, F32, F16, BF16, I64, I32, I16, I8, U8, BOOL";

    public static string? NameOf(ScalarType type) => type switch
    {
        ScalarType.Float64 => "F64",
        ScalarType.Float32 => "F32",
        ScalarType.Float16 => "F16",
        ScalarType.BFloat16 => "BF16",
        ScalarType.Int64 => "I64",
        ScalarType.Int32 => "I32",
        ScalarType.Int16 => "I16",
        ScalarType.Int8 => "I8",
        ScalarType.Byte => "U8",
        ScalarType.Bool => "BOOL",
        _ => null,
    };

    public static (ScalarType Type, int Size)? FromName(string name) => name switch
    {
        "F64" => (ScalarType.Float64, 8),
        "F32" => (ScalarType.Float32, 4),
        "F16" => (ScalarType.Float16, 2),
        "BF16" => (ScalarType.BFloat16, 2),
        "I64" => (ScalarType.Int64, 8),
        "I32" => (ScalarType.Int32, 4),
        "I16" => (ScalarType.Int16, 2),
        "I8" => (ScalarType.Int8, 1),
        "U8" => (ScalarType.Byte, 1),
        "BOOL" => (ScalarType.Bool, 1),
        _ => null,
    };
}
