using System.Text;
using System.Text.Json;
using GuardSpace.Diagnostics;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using TorchSharp;
using static TorchSharp.torch;

namespace GuardSpace.Serialization;

/// <summary>
/// Reads and writes the safetensors format (https://github.com/huggingface/safetensors): an 8-byte little-endian
/// header length, a UTF-8 JSON header padded with spaces to a multiple of 8 bytes, then the raw little-endian
/// tensor bytes, indexed by <c>data_offsets</c> without holes.
/// </summary>
internal static class SafetensorsFile
{
    /// <summary>The reserved header key for the string-to-string metadata map.</summary>
    public const string MetadataKey = "__metadata__";

    /// <summary>The reference implementation refuses headers above 100 MB; so do we.</summary>
    private const long MaxHeaderLength = 100_000_000;

    private const int CopyBufferSize = 1 << 20;

    /// <summary>
    /// Writes <paramref name="tensors"/> (keys sorted ordinally) and the optional <paramref name="metadata"/> to
    /// <paramref name="path"/>. The caller's tensors are not modified: each is copied to a contiguous CPU tensor
    /// when needed. The file is written to a temporary file in the same folder and then moved over
    /// <paramref name="path"/>, so a crash never leaves a half-written file and an older, longer file leaves no bytes behind.
    /// When <paramref name="checksums"/> is given, it receives the <see cref="TensorChecksum"/> of every tensor written.
    /// </summary>
    public static void Write(string path, IReadOnlyDictionary<string, Tensor> tensors, IReadOnlyDictionary<string, string>? metadata = null, ILogger? logger = null, IDictionary<string, string>? checksums = null)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(path);
        var fullPath = Path.GetFullPath(path);
        var temporary = WriteTemporary(fullPath, tensors, metadata, logger, checksums);
        try
        {
            File.Move(temporary, fullPath, overwrite: true);
        }
        catch
        {
            TryDelete(temporary);
            throw;
        }
    }

    /// <summary>
    /// Writes the file as <see cref="Write"/> does, but to a new temporary file beside <paramref name="path"/>, whose path
    /// it returns: the caller moves it into place (or deletes it), for example together with other files.
    /// </summary>
    public static string WriteTemporary(string path, IReadOnlyDictionary<string, Tensor> tensors, IReadOnlyDictionary<string, string>? metadata = null, ILogger? logger = null, IDictionary<string, string>? checksums = null)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(path);
        ArgumentNullException.ThrowIfNull(tensors);
        EnsureLittleEndian();

        var keys = tensors.Keys.OrderBy(k => k, StringComparer.Ordinal).ToList();
        var entries = new List<(string Key, Tensor Tensor, string Dtype, long Begin, long End)>(keys.Count);
        long offset = 0;
        foreach (var key in keys)
        {
            if (string.IsNullOrEmpty(key) || key == MetadataKey)
            {
                throw new ArgumentException($"'{key}' cannot be a tensor name in a safetensors file.", nameof(tensors));
            }

            var tensor = tensors[key] ?? throw new ArgumentException($"Tensor '{key}' is null.", nameof(tensors));
            var dtype = DtypeName(tensor.dtype)
                ?? throw new ArgumentException(
                    $"Tensor '{key}' has dtype {tensor.dtype}, which safetensors files here do not support (F64, F32, F16, BF16, I64, I32, I16, I8, U8, BOOL).",
                    nameof(tensors));
            var bytes = checked(tensor.NumberOfElements * tensor.ElementSize);
            entries.Add((key, tensor, dtype, offset, offset + bytes));
            offset += bytes;
        }

        var header = BuildHeader(entries.Select(e => (e.Key, e.Dtype, e.Tensor.shape, e.Begin, e.End)), metadata);

        var fullPath = Path.GetFullPath(path);
        var directory = Path.GetDirectoryName(fullPath) ?? throw new ArgumentException($"'{path}' has no parent folder.", nameof(path));
        Directory.CreateDirectory(directory);
        var temporary = Path.Combine(directory, $".{Path.GetFileName(fullPath)}.{Guid.NewGuid():N}.tmp");
        try
        {
            using (var stream = new FileStream(temporary, FileMode.CreateNew, FileAccess.Write, FileShare.None, CopyBufferSize))
            {
                Span<byte> lengthBytes = stackalloc byte[8];
                System.Buffers.Binary.BinaryPrimitives.WriteUInt64LittleEndian(lengthBytes, (ulong)header.Length);
                stream.Write(lengthBytes);
                stream.Write(header);
                foreach (var entry in entries)
                {
                    using var scope = NewDisposeScope();
                    var cpu = entry.Tensor.detach().cpu().contiguous();
                    if (checksums is not null)
                    {
                        checksums[entry.Key] = TensorChecksum.Compute(cpu);
                    }

                    if (entry.End > entry.Begin)
                    {
                        cpu.WriteBytesToStream(stream, CopyBufferSize);
                    }
                }

                stream.Flush(flushToDisk: true);
            }
        }
        catch
        {
            TryDelete(temporary);
            throw;
        }

        Log.SafetensorsWritten(logger ?? NullLogger.Instance, entries.Count, offset, fullPath);
        return temporary;
    }

    /// <summary>
    /// Reads every tensor and the metadata of a safetensors file. Tensors are created on the CPU and moved to
    /// <paramref name="device"/> when one is given. Throws <see cref="InvalidDataException"/> naming the file and the
    /// problem for a malformed file (short file, header beyond the file, invalid JSON, unknown dtype, offsets that are
    /// out of order, overlap, leave holes or do not match the shape, or a data buffer of the wrong length).
    /// When <paramref name="checksums"/> is given, it receives the <see cref="TensorChecksum"/> of every tensor read.
    /// </summary>
    public static (Dictionary<string, Tensor> Tensors, Dictionary<string, string> Metadata) Read(string path, Device? device = null, ILogger? logger = null, IDictionary<string, string>? checksums = null)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(path);
        EnsureLittleEndian();

        using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, CopyBufferSize);
        var fileLength = stream.Length;
        if (fileLength < 8)
        {
            throw Invalid(path, $"the file has {fileLength} bytes, fewer than the 8-byte header length.");
        }

        Span<byte> lengthBytes = stackalloc byte[8];
        stream.ReadExactly(lengthBytes);
        var headerLength = System.Buffers.Binary.BinaryPrimitives.ReadUInt64LittleEndian(lengthBytes);
        if (headerLength > (ulong)(fileLength - 8))
        {
            throw Invalid(path, $"the header length {headerLength} runs beyond the end of the file ({fileLength} bytes).");
        }

        if (headerLength > MaxHeaderLength)
        {
            throw Invalid(path, $"the header length {headerLength} exceeds the limit of {MaxHeaderLength} bytes.");
        }

        var header = new byte[(int)headerLength];
        stream.ReadExactly(header);
        var dataStart = 8 + (long)headerLength;
        var dataLength = fileLength - dataStart;

        var (specs, metadata) = ParseHeader(path, header);
        ValidateOffsets(path, specs, dataLength);

        var result = new Dictionary<string, Tensor>(StringComparer.Ordinal);
        try
        {
            foreach (var spec in specs.OrderBy(s => s.Begin).ThenBy(s => s.Key, StringComparer.Ordinal))
            {
                using var scope = NewDisposeScope();
                var tensor = empty(spec.Shape, spec.Type, CPU);
                if (spec.End > spec.Begin)
                {
                    stream.Position = dataStart + spec.Begin;
                    tensor.ReadBytesFromStream(stream, CopyBufferSize);
                }

                if (checksums is not null)
                {
                    checksums[spec.Key] = TensorChecksum.Compute(tensor);
                }

                if (device is not null && !SameDevice(device, tensor.device))
                {
                    tensor = tensor.to(device);
                }

                result.Add(spec.Key, tensor.MoveToOuterDisposeScope());
            }
        }
        catch (EndOfStreamException ex)
        {
            DisposeAll(result);
            throw new InvalidDataException($"Safetensors file '{path}' is invalid: it ended before the tensor data did.", ex);
        }
        catch
        {
            DisposeAll(result);
            throw;
        }

        Log.SafetensorsRead(logger ?? NullLogger.Instance, result.Count, dataLength, path);
        return (result, metadata);
    }

    internal static string? DtypeName(ScalarType type) => type switch
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

    internal static (ScalarType Type, int Size)? DtypeFromName(string name) => name switch
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

    private static byte[] BuildHeader(IEnumerable<(string Key, string Dtype, long[] Shape, long Begin, long End)> entries, IReadOnlyDictionary<string, string>? metadata)
    {
        using var buffer = new MemoryStream();
        using (var writer = new Utf8JsonWriter(buffer))
        {
            writer.WriteStartObject();
            if (metadata is { Count: > 0 })
            {
                writer.WriteStartObject(MetadataKey);
                foreach (var (key, value) in metadata.OrderBy(kv => kv.Key, StringComparer.Ordinal))
                {
                    ArgumentNullException.ThrowIfNull(value, $"metadata[{key}]");
                    writer.WriteString(key, value);
                }

                writer.WriteEndObject();
            }

            foreach (var (key, dtype, shape, begin, end) in entries)
            {
                writer.WriteStartObject(key);
                writer.WriteString("dtype", dtype);
                writer.WriteStartArray("shape");
                foreach (var d in shape)
                {
                    writer.WriteNumberValue(d);
                }

                writer.WriteEndArray();
                writer.WriteStartArray("data_offsets");
                writer.WriteNumberValue(begin);
                writer.WriteNumberValue(end);
                writer.WriteEndArray();
                writer.WriteEndObject();
            }

            writer.WriteEndObject();
        }

        var length = (int)buffer.Length;
        var padded = (length + 7) / 8 * 8;
        var header = new byte[padded];
        buffer.GetBuffer().AsSpan(0, length).CopyTo(header);
        header.AsSpan(length).Fill((byte)' ');
        return header;
    }

    private sealed record TensorSpec(string Key, ScalarType Type, int ElementSize, long[] Shape, long Begin, long End);

    private static (List<TensorSpec> Specs, Dictionary<string, string> Metadata) ParseHeader(string path, byte[] header)
    {
        JsonDocument document;
        try
        {
            var text = new UTF8Encoding(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true).GetString(header);
            document = JsonDocument.Parse(text);
        }
        catch (Exception ex) when (ex is JsonException or DecoderFallbackException or ArgumentException)
        {
            throw new InvalidDataException($"Safetensors file '{path}' is invalid: its header is not valid UTF-8 JSON ({ex.Message}).", ex);
        }

        using (document)
        {
            if (document.RootElement.ValueKind != JsonValueKind.Object)
            {
                throw Invalid(path, $"the header is a JSON {document.RootElement.ValueKind}, not an object.");
            }

            var specs = new List<TensorSpec>();
            var metadata = new Dictionary<string, string>(StringComparer.Ordinal);
            var seen = new HashSet<string>(StringComparer.Ordinal);
            foreach (var property in document.RootElement.EnumerateObject())
            {
                if (!seen.Add(property.Name))
                {
                    throw Invalid(path, $"the header names '{property.Name}' twice.");
                }

                if (property.Name == MetadataKey)
                {
                    if (property.Value.ValueKind != JsonValueKind.Object)
                    {
                        throw Invalid(path, $"'{MetadataKey}' is a JSON {property.Value.ValueKind}, not an object of strings.");
                    }

                    foreach (var item in property.Value.EnumerateObject())
                    {
                        if (item.Value.ValueKind != JsonValueKind.String)
                        {
                            throw Invalid(path, $"metadata entry '{item.Name}' is a JSON {item.Value.ValueKind}, not a string.");
                        }

                        metadata[item.Name] = item.Value.GetString()!;
                    }

                    continue;
                }

                specs.Add(ParseTensorSpec(path, property));
            }

            return (specs, metadata);
        }
    }

    private static TensorSpec ParseTensorSpec(string path, JsonProperty property)
    {
        var key = property.Name;
        var value = property.Value;
        if (value.ValueKind != JsonValueKind.Object)
        {
            throw Invalid(path, $"the entry for tensor '{key}' is a JSON {value.ValueKind}, not an object.");
        }

        if (!value.TryGetProperty("dtype", out var dtypeElement) || dtypeElement.ValueKind != JsonValueKind.String)
        {
            throw Invalid(path, $"tensor '{key}' has no string 'dtype'.");
        }

        var dtypeName = dtypeElement.GetString()!;
        var dtype = DtypeFromName(dtypeName) ?? throw Invalid(path, $"tensor '{key}' has the unknown or unsupported dtype '{dtypeName}'.");

        if (!value.TryGetProperty("shape", out var shapeElement) || shapeElement.ValueKind != JsonValueKind.Array)
        {
            throw Invalid(path, $"tensor '{key}' has no 'shape' array.");
        }

        var shape = new List<long>();
        foreach (var d in shapeElement.EnumerateArray())
        {
            if (d.ValueKind != JsonValueKind.Number || !d.TryGetInt64(out var dim) || dim < 0)
            {
                throw Invalid(path, $"tensor '{key}' has a shape entry '{d}' that is not a non-negative integer.");
            }

            shape.Add(dim);
        }

        if (!value.TryGetProperty("data_offsets", out var offsetsElement) || offsetsElement.ValueKind != JsonValueKind.Array || offsetsElement.GetArrayLength() != 2)
        {
            throw Invalid(path, $"tensor '{key}' has no 'data_offsets' array of two integers.");
        }

        var offsets = new long[2];
        for (var i = 0; i < 2; i++)
        {
            var o = offsetsElement[i];
            if (o.ValueKind != JsonValueKind.Number || !o.TryGetInt64(out offsets[i]) || offsets[i] < 0)
            {
                throw Invalid(path, $"tensor '{key}' has a data offset '{o}' that is not a non-negative integer.");
            }
        }

        if (offsets[1] < offsets[0])
        {
            throw Invalid(path, $"tensor '{key}' has data_offsets [{offsets[0]}, {offsets[1]}] whose end precedes its start.");
        }

        long expected;
        try
        {
            expected = checked(shape.Aggregate(1L, (a, b) => checked(a * b)) * dtype.Size);
        }
        catch (OverflowException)
        {
            throw Invalid(path, $"tensor '{key}' has a shape [{string.Join(", ", shape)}] too large to address.");
        }

        if (offsets[1] - offsets[0] != expected)
        {
            throw Invalid(path,
                $"tensor '{key}' ({dtypeName}, shape [{string.Join(", ", shape)}]) needs {expected} bytes but its data_offsets [{offsets[0]}, {offsets[1]}] span {offsets[1] - offsets[0]}.");
        }

        return new TensorSpec(key, dtype.Type, dtype.Size, [.. shape], offsets[0], offsets[1]);
    }

    private static void ValidateOffsets(string path, List<TensorSpec> specs, long dataLength)
    {
        long position = 0;
        foreach (var spec in specs.OrderBy(s => s.Begin).ThenBy(s => s.End))
        {
            if (spec.Begin < position)
            {
                throw Invalid(path, $"tensor '{spec.Key}' starts at data offset {spec.Begin}, inside the previous tensor (which ends at {position}): offsets overlap.");
            }

            if (spec.Begin > position)
            {
                throw Invalid(path, $"tensor '{spec.Key}' starts at data offset {spec.Begin}, leaving a hole after offset {position}.");
            }

            position = spec.End;
        }

        if (position != dataLength)
        {
            var what = dataLength < position ? "is truncated" : "has trailing bytes";
            throw Invalid(path, $"the data buffer {what}: the offsets end at {position} but the file holds {dataLength} data bytes after the header.");
        }
    }

    private static bool SameDevice(Device a, Device b) =>
        a.type == b.type && (a.index == b.index || (a.type == DeviceType.CPU));

    private static InvalidDataException Invalid(string path, string what) => new($"Safetensors file '{path}' is invalid: {what}");

    private static void EnsureLittleEndian()
    {
        if (!BitConverter.IsLittleEndian)
        {
            throw new PlatformNotSupportedException("Safetensors files are little-endian; big-endian machines are not supported.");
        }
    }

    private static void DisposeAll(Dictionary<string, Tensor> tensors)
    {
        foreach (var t in tensors.Values)
        {
            t.Dispose();
        }

        tensors.Clear();
    }

    private static void TryDelete(string file)
    {
        try
        {
            File.Delete(file);
        }
        catch (IOException)
        {
        }
        catch (UnauthorizedAccessException)
        {
        }
    }
}
