using GuardSpace.Diagnostics;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using TorchSharp;
using static TorchSharp.torch;

namespace GuardSpace.Storage;

/// <summary>
/// Writes safetensors files (https://github.com/huggingface/safetensors) that the reference implementation and
/// <see cref="SafetensorsReader"/> read: tensors in ordinal name order, without holes, the header padded with spaces to
/// a multiple of 8 bytes. Files are written through <see cref="AtomicFileWriter"/>, never in place.
/// </summary>
public static class SafetensorsWriter
{
    /// <summary>The reserved header key for the string-to-string metadata map.</summary>
    public const string MetadataKey = SafetensorsHeader.MetadataKey;

    private const int CopyBufferSize = 1 << 20;

    /// <summary>
    /// Writes <paramref name="tensors"/> (F64, F32, F16, BF16, I64, I32, I16, I8, U8 or BOOL, on any device, contiguous or
    /// not) and the optional <paramref name="metadata"/> to <paramref name="path"/>, replacing it atomically. The caller's
    /// tensors are not modified. When <paramref name="checksums"/> is given, it receives, by tensor name, the XXH3-128
    /// checksum of the bytes written (<c>xxh128:</c> plus 32 hex digits). Throws <see cref="ArgumentException"/> naming
    /// the tensor for an unsupported dtype, an empty name or the reserved name <c>__metadata__</c>.
    /// </summary>
    public static void Write(string path, IReadOnlyDictionary<string, Tensor> tensors, IReadOnlyDictionary<string, string>? metadata = null, ILogger? logger = null, IDictionary<string, string>? checksums = null)
    {
        var fullPath = Path.GetFullPath(path);
        var temporary = WriteTemporary(fullPath, tensors, metadata, logger, checksums);
        try
        {
            File.Move(temporary, fullPath, overwrite: true);
        }
        catch
        {
            AtomicFileWriter.TryDelete(temporary);
            throw;
        }
    }

    /// <summary>
    /// Writes the file as <see cref="Write"/> does, but to a new temporary file beside <paramref name="path"/>, whose path
    /// it returns: the caller moves it into place (or deletes it), for example together with other files.
    /// </summary>
    internal static string WriteTemporary(string path, IReadOnlyDictionary<string, Tensor> tensors, IReadOnlyDictionary<string, string>? metadata = null, ILogger? logger = null, IDictionary<string, string>? checksums = null)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(path);
        ArgumentNullException.ThrowIfNull(tensors);
        SafetensorsReader.EnsureLittleEndian();

        var entries = Layout(tensors);
        var header = SafetensorsHeader.Build(entries, metadata);
        var temporary = AtomicFileWriter.WriteTemporary(path, stream =>
        {
            Span<byte> lengthBytes = stackalloc byte[8];
            System.Buffers.Binary.BinaryPrimitives.WriteUInt64LittleEndian(lengthBytes, (ulong)header.Length);
            stream.Write(lengthBytes);
            stream.Write(header);
            foreach (var entry in entries)
            {
                using var scope = NewDisposeScope();
                var cpu = tensors[entry.Name].detach().cpu().contiguous();
                if (checksums is not null)
                {
                    checksums[entry.Name] = TensorChecksum.Compute(cpu);
                }

                if (entry.ByteLength > 0)
                {
                    cpu.WriteBytesToStream(stream, (int)Math.Min(CopyBufferSize, entry.ByteLength));
                }
            }
        });

        Log.SafetensorsWritten(logger ?? NullLogger.Instance, entries.Count, entries.Count == 0 ? 0 : entries[^1].End, Path.GetFullPath(path));
        return temporary;
    }

    private static List<SafetensorsEntry> Layout(IReadOnlyDictionary<string, Tensor> tensors)
    {
        var entries = new List<SafetensorsEntry>(tensors.Count);
        long offset = 0;
        foreach (var key in tensors.Keys.Order(StringComparer.Ordinal))
        {
            if (string.IsNullOrEmpty(key) || key == MetadataKey)
            {
                throw new ArgumentException($"'{key}' cannot be a tensor name in a safetensors file.", nameof(tensors));
            }

            var tensor = tensors[key] ?? throw new ArgumentException($"Tensor '{key}' is null.", nameof(tensors));
            var dtype = SafetensorsDtypes.NameOf(tensor.dtype)
                ?? throw new ArgumentException(
                    $"Tensor '{key}' has dtype {tensor.dtype}, which safetensors files here do not support ({SafetensorsDtypes.SupportedList}).",
                    nameof(tensors));
            var bytes = checked(tensor.NumberOfElements * tensor.ElementSize);
            entries.Add(new SafetensorsEntry(key, dtype, tensor.dtype, tensor.shape, offset, offset + bytes));
            offset += bytes;
        }

        return entries;
    }
}
