using System.Buffers.Binary;
using System.Text;
using System.Text.Json;
using TorchSharp;
using static TorchSharp.torch;

namespace GuardSpace.Models.Checkpoints;

/// <summary>
/// Reads safetensors files one tensor at a time, so a multi-gigabyte shard never has to fit in memory twice: the header
/// (an 8-byte little-endian length, then JSON mapping each name to dtype, shape and <c>data_offsets</c>) is parsed and
/// checked first, then each tensor is read straight from the file.
/// </summary>
public sealed class SafetensorsReader : IDisposable
{
    private const int BufferSize = 1 << 20;
    private readonly FileStream _stream;
    private readonly long _dataStart;

    private SafetensorsReader(string path, FileStream stream, long dataStart, IReadOnlyDictionary<string, SafetensorsEntry> entries)
    {
        Path = path;
        _stream = stream;
        _dataStart = dataStart;
        Entries = entries;
    }

    /// <summary>The file.</summary>
    public string Path { get; }

    /// <summary>Every tensor in the file, by name.</summary>
    public IReadOnlyDictionary<string, SafetensorsEntry> Entries { get; }

    /// <summary>
    /// Opens <paramref name="path"/> and checks its header: throws <see cref="FileNotFoundException"/> when it is missing and
    /// <see cref="InvalidDataException"/> naming the file (and the tensor) when the header is malformed or a tensor's
    /// byte range does not fit its shape or the file.
    /// </summary>
    public static SafetensorsReader Open(string path)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(path);
        if (!File.Exists(path))
        {
            throw new FileNotFoundException($"'{path}' is missing.", path);
        }

        var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, BufferSize);
        try
        {
            Span<byte> lengthBytes = stackalloc byte[8];
            if (stream.Length < 8)
            {
                throw Invalid(path, $"it has {stream.Length} bytes, fewer than the 8-byte header length");
            }

            stream.ReadExactly(lengthBytes);
            var headerLength = BinaryPrimitives.ReadUInt64LittleEndian(lengthBytes);
            if (headerLength > (ulong)(stream.Length - 8) || headerLength > 100_000_000)
            {
                throw Invalid(path, $"its header length {headerLength} does not fit the file ({stream.Length} bytes)");
            }

            var header = new byte[(int)headerLength];
            stream.ReadExactly(header);
            var dataStart = 8 + (long)headerLength;
            var entries = ParseHeader(path, header, stream.Length - dataStart);
            return new SafetensorsReader(path, stream, dataStart, entries);
        }
        catch
        {
            stream.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Reads tensor <paramref name="name"/> into a new CPU tensor of the file's dtype. Only the floating dtypes of
    /// <see cref="SafetensorsEntry.FloatingTypes"/> are supported (checkpoint weights); others throw
    /// <see cref="NotSupportedException"/> naming the file and the tensor.
    /// </summary>
    public Tensor Read(string name)
    {
        if (!Entries.TryGetValue(name, out var entry))
        {
            throw new KeyNotFoundException($"'{Path}' has no tensor '{name}'.");
        }

        if (!SafetensorsEntry.FloatingTypes.TryGetValue(entry.Dtype, out var type))
        {
            throw new NotSupportedException($"'{Path}': tensor '{name}' has dtype {entry.Dtype}; only F32, F16, BF16 and F64 weights are supported (quantised checkpoints are not).");
        }

        using var scope = NewDisposeScope();
        var result = empty(entry.Shape, type, CPU);
        if (entry.End > entry.Begin)
        {
            _stream.Position = _dataStart + entry.Begin;
            try
            {
                result.ReadBytesFromStream(_stream, BufferSize);
            }
            catch (EndOfStreamException ex)
            {
                throw Invalid(Path, $"it ends inside tensor '{name}'", ex);
            }
        }

        return result.MoveToOuterDisposeScope();
    }

    /// <inheritdoc />
    public void Dispose() => _stream.Dispose();

    private static Dictionary<string, SafetensorsEntry> ParseHeader(string path, byte[] header, long dataLength)
    {
        JsonDocument document;
        try
        {
            document = JsonDocument.Parse(new UTF8Encoding(false, true).GetString(header));
        }
        catch (Exception ex) when (ex is JsonException or DecoderFallbackException or ArgumentException)
        {
            throw Invalid(path, $"its header is not valid UTF-8 JSON ({ex.Message})", ex);
        }

        using (document)
        {
            if (document.RootElement.ValueKind != JsonValueKind.Object)
            {
                throw Invalid(path, "its header is not a JSON object");
            }

            var entries = new Dictionary<string, SafetensorsEntry>(StringComparer.Ordinal);
            foreach (var property in document.RootElement.EnumerateObject())
            {
                if (property.Name == "__metadata__")
                {
                    continue;
                }

                try
                {
                    var dtype = property.Value.GetProperty("dtype").GetString() ?? throw new InvalidOperationException("dtype is null");
                    var shape = property.Value.GetProperty("shape").EnumerateArray().Select(d => d.GetInt64()).ToArray();
                    var offsets = property.Value.GetProperty("data_offsets").EnumerateArray().Select(o => o.GetInt64()).ToArray();
                    if (offsets.Length != 2 || offsets[0] < 0 || offsets[1] < offsets[0] || offsets[1] > dataLength)
                    {
                        throw Invalid(path, $"tensor '{property.Name}' has data_offsets [{string.Join(", ", offsets)}] outside the {dataLength}-byte data section");
                    }

                    var size = dtype switch { "F64" or "I64" => 8, "F32" or "I32" => 4, "F16" or "BF16" or "I16" => 2, _ => 1 };
                    var elements = shape.Aggregate(1L, (a, d) => checked(a * d));
                    if (shape.Any(d => d < 0) || offsets[1] - offsets[0] != elements * size)
                    {
                        throw Invalid(path, $"tensor '{property.Name}' ({dtype} [{string.Join(", ", shape)}]) spans {offsets[1] - offsets[0]} bytes, not {elements * size}");
                    }

                    entries[property.Name] = new SafetensorsEntry(property.Name, dtype, shape, offsets[0], offsets[1]);
                }
                catch (Exception ex) when (ex is KeyNotFoundException or InvalidOperationException or FormatException or OverflowException)
                {
                    throw Invalid(path, $"the header entry of tensor '{property.Name}' is malformed ({ex.Message})", ex);
                }
            }

            return entries;
        }
    }

    private static InvalidDataException Invalid(string path, string problem, Exception? inner = null) =>
        new($"Safetensors file '{path}' is invalid: {problem}.", inner);
}
