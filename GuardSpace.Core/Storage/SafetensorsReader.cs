using System.Buffers.Binary;
using GuardSpace.Diagnostics;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using TorchSharp;
using static TorchSharp.torch;

namespace GuardSpace.Storage;

/// <summary>
/// Reads safetensors files (https://github.com/huggingface/safetensors): an 8-byte little-endian header length, a UTF-8
/// JSON header, then the raw little-endian tensor bytes indexed by <c>data_offsets</c>. <see cref="Open"/> checks the whole
/// header before any tensor is read, so a multi-gigabyte shard can then be read one tensor at a time; <see cref="ReadAll"/>
/// reads a whole file. The file is treated as hostile: nothing is allocated larger than the file, and every malformed
/// field is refused with an <see cref="InvalidDataException"/> naming the file and the field.
/// </summary>
public sealed class SafetensorsReader : IDisposable
{
    private const int CopyBufferSize = 1 << 20;
    private readonly FileStream _stream;
    private readonly long _dataStart;

    private SafetensorsReader(string path, FileStream stream, long dataStart, Dictionary<string, SafetensorsEntry> entries, Dictionary<string, string> metadata)
    {
        Path = path;
        _stream = stream;
        _dataStart = dataStart;
        Entries = entries;
        Metadata = metadata;
        DataLength = stream.Length - dataStart;
    }

    /// <summary>The file.</summary>
    public string Path { get; }

    /// <summary>Every tensor in the file, by name.</summary>
    public IReadOnlyDictionary<string, SafetensorsEntry> Entries { get; }

    /// <summary>The <c>__metadata__</c> map (empty when the file has none).</summary>
    public IReadOnlyDictionary<string, string> Metadata { get; }

    /// <summary>The size of the data section in bytes.</summary>
    public long DataLength { get; }

    /// <summary>
    /// Opens <paramref name="path"/> and checks its header: throws <see cref="FileNotFoundException"/> when it is missing and
    /// <see cref="InvalidDataException"/> naming the file and the field when the file is malformed: too short, a header
    /// length beyond the file or above 100 MB, invalid UTF-8, a lone surrogate escape or invalid JSON, a duplicate tensor
    /// name or metadata key, an unknown dtype, a shape whose size does not match its <c>data_offsets</c>, or offsets that
    /// overlap, leave holes or do not cover the data section exactly.
    /// </summary>
    public static SafetensorsReader Open(string path)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(path);
        if (!File.Exists(path))
        {
            throw new FileNotFoundException($"Safetensors file '{path}' is missing.", path);
        }

        EnsureLittleEndian();
        // Unbuffered: tensor reads bring their own buffer, sized to the tensor.
        var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, bufferSize: 1);
        try
        {
            var fileLength = stream.Length;
            if (fileLength < 8)
            {
                throw SafetensorsHeader.Invalid(path, $"the file has {fileLength} bytes, fewer than the 8-byte header length.");
            }

            Span<byte> lengthBytes = stackalloc byte[8];
            stream.ReadExactly(lengthBytes);
            var headerLength = BinaryPrimitives.ReadUInt64LittleEndian(lengthBytes);
            if (headerLength > (ulong)(fileLength - 8))
            {
                throw SafetensorsHeader.Invalid(path, $"the header length {headerLength} runs beyond the end of the file ({fileLength} bytes).");
            }

            if (headerLength > SafetensorsHeader.MaxLength)
            {
                throw SafetensorsHeader.Invalid(path, $"the header length {headerLength} exceeds the limit of {SafetensorsHeader.MaxLength} bytes.");
            }

            var header = new byte[(int)headerLength];
            stream.ReadExactly(header);
            var dataStart = 8 + (long)headerLength;
            var (entries, metadata) = SafetensorsHeader.Parse(path, header, fileLength - dataStart);
            return new SafetensorsReader(path, stream, dataStart, entries, metadata);
        }
        catch
        {
            stream.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Reads every tensor and the metadata of <paramref name="path"/> (checked as <see cref="Open"/> does). Tensors are
    /// created on the CPU and moved to <paramref name="device"/> when one is given. When <paramref name="checksums"/> is
    /// given, it receives, by tensor name, the XXH3-128 checksum of the bytes read (<c>xxh128:</c> plus 32 hex digits),
    /// the form GuardSpace adapter configs record.
    /// </summary>
    public static (Dictionary<string, Tensor> Tensors, Dictionary<string, string> Metadata) ReadAll(string path, Device? device = null, ILogger? logger = null, IDictionary<string, string>? checksums = null)
    {
        using var reader = Open(path);
        var result = new Dictionary<string, Tensor>(StringComparer.Ordinal);
        try
        {
            foreach (var entry in reader.Entries.Values.OrderBy(e => e.Begin).ThenBy(e => e.Name, StringComparer.Ordinal))
            {
                using var scope = NewDisposeScope();
                var tensor = reader.Read(entry.Name);
                if (checksums is not null)
                {
                    checksums[entry.Name] = TensorChecksum.Compute(tensor);
                }

                if (device is not null && !SameDevice(device, tensor.device))
                {
                    tensor = tensor.to(device);
                }

                result.Add(entry.Name, tensor.MoveToOuterDisposeScope());
            }
        }
        catch
        {
            foreach (var t in result.Values)
            {
                t.Dispose();
            }

            throw;
        }

        Log.SafetensorsRead(logger ?? NullLogger.Instance, result.Count, reader.DataLength, path);
        return (result, new Dictionary<string, string>(reader.Metadata, StringComparer.Ordinal));
    }

    /// <summary>
    /// Reads tensor <paramref name="name"/> into a new contiguous CPU tensor of the file's dtype. Throws
    /// <see cref="KeyNotFoundException"/> naming the file when it holds no such tensor.
    /// </summary>
    public Tensor Read(string name)
    {
        ObjectDisposedException.ThrowIf(!_stream.CanRead, this);
        if (!Entries.TryGetValue(name, out var entry))
        {
            throw new KeyNotFoundException($"Safetensors file '{Path}' has no tensor '{name}'.");
        }

        using var scope = NewDisposeScope();
        var result = empty(entry.Shape, entry.Type, CPU);
        if (entry.ByteLength > 0)
        {
            _stream.Position = _dataStart + entry.Begin;
            try
            {
                result.ReadBytesFromStream(_stream, (int)Math.Min(CopyBufferSize, entry.ByteLength));
            }
            catch (EndOfStreamException ex)
            {
                throw SafetensorsHeader.Invalid(Path, $"it ended inside tensor '{name}' (the file shrank while open?).", ex);
            }
        }

        return result.MoveToOuterDisposeScope();
    }

    /// <inheritdoc />
    public void Dispose() => _stream.Dispose();

    internal static void EnsureLittleEndian()
    {
        if (!BitConverter.IsLittleEndian)
        {
            throw new PlatformNotSupportedException("Safetensors files are little-endian; big-endian machines are not supported.");
        }
    }

    private static bool SameDevice(Device a, Device b) =>
        a.type == b.type && (a.index == b.index || a.type == DeviceType.CPU);
}
