using System.Buffers.Binary;
using System.Text.Json;
using TorchSharp;
using static TorchSharp.torch;

namespace GuardSpace.Models.Checkpoints;

/// <summary>
/// Writes safetensors files (an 8-byte little-endian header length, a JSON header padded with spaces to 8 bytes, the raw
/// little-endian data) through a temporary file and a move, so a crash never leaves a half-written checkpoint.
/// </summary>
public static class SafetensorsWriter
{
    /// <summary>Writes <paramref name="tensors"/> (F64, F32, F16 or BF16) in name order, with <c>__metadata__ {"format": "pt"}</c>.</summary>
    public static void Write(string path, IReadOnlyDictionary<string, Tensor> tensors)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(path);
        ArgumentNullException.ThrowIfNull(tensors);
        var names = tensors.Keys.Order(StringComparer.Ordinal).ToList();
        var dtypeNames = SafetensorsEntry.FloatingTypes.ToDictionary(kv => kv.Value, kv => kv.Key);
        using var header = new MemoryStream();
        using (var json = new Utf8JsonWriter(header))
        {
            json.WriteStartObject();
            json.WriteStartObject("__metadata__");
            json.WriteString("format", "pt");
            json.WriteEndObject();
            long offset = 0;
            foreach (var name in names)
            {
                var t = tensors[name];
                if (!dtypeNames.TryGetValue(t.dtype, out var dtype))
                {
                    throw new ArgumentException($"Tensor '{name}' has dtype {t.dtype}; checkpoints hold F64, F32, F16 or BF16 weights.", nameof(tensors));
                }

                var bytes = t.NumberOfElements * t.ElementSize;
                json.WriteStartObject(name);
                json.WriteString("dtype", dtype);
                json.WriteStartArray("shape");
                foreach (var d in t.shape)
                {
                    json.WriteNumberValue(d);
                }

                json.WriteEndArray();
                json.WriteStartArray("data_offsets");
                json.WriteNumberValue(offset);
                json.WriteNumberValue(offset + bytes);
                json.WriteEndArray();
                json.WriteEndObject();
                offset += bytes;
            }

            json.WriteEndObject();
        }

        var padding = (int)((8 - (header.Length % 8)) % 8);
        header.Write(Enumerable.Repeat((byte)' ', padding).ToArray());
        AtomicWrite(path, stream =>
        {
            Span<byte> length = stackalloc byte[8];
            BinaryPrimitives.WriteUInt64LittleEndian(length, (ulong)header.Length);
            stream.Write(length);
            header.Position = 0;
            header.CopyTo(stream);
            foreach (var name in names)
            {
                using var scope = NewDisposeScope();
                tensors[name].detach().cpu().contiguous().WriteBytesToStream(stream);
            }
        });
    }

    /// <summary>Writes a file through <paramref name="write"/> into a temporary sibling, then moves it over <paramref name="path"/>.</summary>
    internal static void AtomicWrite(string path, Action<Stream> write)
    {
        var full = System.IO.Path.GetFullPath(path);
        var directory = System.IO.Path.GetDirectoryName(full)!;
        Directory.CreateDirectory(directory);
        var temporary = System.IO.Path.Combine(directory, $".{System.IO.Path.GetFileName(full)}.{Guid.NewGuid():N}.tmp");
        try
        {
            using (var stream = new FileStream(temporary, FileMode.CreateNew, FileAccess.Write))
            {
                write(stream);
            }

            File.Move(temporary, full, overwrite: true);
        }
        catch
        {
            File.Delete(temporary);
            throw;
        }
    }
}
