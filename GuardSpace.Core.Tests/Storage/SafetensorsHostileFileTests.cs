using System.Buffers.Binary;
using System.Text;
using GuardSpace.Storage;
using GuardSpace.Tests.TestUtilities;
using TorchSharp;
using static TorchSharp.torch;

namespace GuardSpace.Tests.Storage;

/// <summary>Files crafted to break a reader: each must be refused with an <see cref="InvalidDataException"/> naming the file and the field.</summary>
public sealed class SafetensorsHostileFileTests : IDisposable
{
    private const string TwoFloats = "{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}";
    private readonly TempDirectory folder = TempDirectory.Create("guardspace-hostile-");

    public void Dispose() => folder.Dispose();

    private string PathOf(string name) => Path.Combine(folder, name);

    /// <summary>Length prefix, the header bytes as given (padded with spaces to 8), then <paramref name="dataLength"/> zero bytes.</summary>
    private static byte[] Craft(byte[] header, int dataLength)
    {
        var length = (header.Length + 7) / 8 * 8;
        var bytes = new byte[8 + length + dataLength];
        BinaryPrimitives.WriteUInt64LittleEndian(bytes, (ulong)length);
        header.CopyTo(bytes, 8);
        bytes.AsSpan(8 + header.Length, length - header.Length).Fill((byte)' ');
        return bytes;
    }

    private static byte[] Craft(string header, int dataLength) => Craft(Encoding.UTF8.GetBytes(header), dataLength);

    private void Refused(byte[] content, params string[] fragments)
    {
        var path = PathOf("hostile.safetensors");
        File.WriteAllBytes(path, content);
        var ex = Assert.Throws<InvalidDataException>(() => SafetensorsReader.Open(path).Dispose());
        Assert.Contains(path, ex.Message);
        foreach (var fragment in fragments)
        {
            Assert.Contains(fragment, ex.Message);
        }

        // ReadAll goes through the same checks.
        Assert.Throws<InvalidDataException>(() => SafetensorsReader.ReadAll(path));
    }

    [Fact]
    public void TheCraftedBaselineReads()
    {
        var path = PathOf("ok.safetensors");
        File.WriteAllBytes(path, Craft($"{{\"__metadata__\":{{\"k\":\"v\"}},\"a\":{TwoFloats}}}", 8));
        using var reader = SafetensorsReader.Open(path);
        Assert.Equal("v", reader.Metadata["k"]);
        using var a = reader.Read("a");
        Assert.Equal(new[] { 0f, 0f }, a.data<float>().ToArray());
        Assert.Contains(path, Assert.Throws<KeyNotFoundException>(() => reader.Read("b")).Message);
    }

    [Fact]
    public void HeaderLengthBeyondTheFileOrHugeIsRefused()
    {
        var bytes = Craft($"{{\"a\":{TwoFloats}}}", 8);
        BinaryPrimitives.WriteUInt64LittleEndian(bytes, ulong.MaxValue);
        Refused(bytes, "header length 18446744073709551615", "beyond the end of the file");

        // A sparse file just long enough to hold a header above the 100 MB cap: refused before the header is allocated.
        var path = PathOf("hostile.safetensors");
        using (var stream = new FileStream(path, FileMode.Create))
        {
            Span<byte> length = stackalloc byte[8];
            BinaryPrimitives.WriteUInt64LittleEndian(length, 100_000_008);
            stream.Write(length);
            stream.SetLength(8 + 100_000_008);
        }

        Assert.Contains("exceeds the limit", Assert.Throws<InvalidDataException>(() => SafetensorsReader.Open(path)).Message);
    }

    [Fact]
    public void OffsetsPastTheEndOverlappingOrNotCoveringTheDataAreRefused()
    {
        Refused(Craft($"{{\"a\":{TwoFloats}}}", 4), "tensor", "truncated");
        Refused(Craft($"{{\"a\":{TwoFloats}}}", 12), "trailing bytes");
        Refused(Craft($"{{\"a\":{TwoFloats},\"b\":{{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}}}", 12), "'b'", "overlap");
        Refused(Craft("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}", 12), "'a'", "hole");
        Refused(Craft("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,9223372036854775807]}}", 8), "'a'", "needs 8 bytes");
    }

    [Fact]
    public void DtypeTimesShapeMismatchAndOverflowAreRefusedBeforeAnyAllocation()
    {
        Refused(Craft("{\"a\":{\"dtype\":\"F64\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8), "'a'", "needs 16 bytes");
        // 2^40 elements would be 4 TiB: refused from the header, nothing allocated.
        Refused(Craft("{\"a\":{\"dtype\":\"F32\",\"shape\":[1099511627776],\"data_offsets\":[0,8]}}", 8), "'a'", "needs 4398046511104 bytes");
        Refused(Craft("{\"a\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296],\"data_offsets\":[0,8]}}", 8), "'a'", "too large to address");
    }

    [Fact]
    public void DuplicateTensorNamesAndMetadataKeysAreRefused()
    {
        Refused(Craft($"{{\"a\":{TwoFloats},\"a\":{TwoFloats}}}", 8), "tensor 'a' twice");
        Refused(Craft($"{{\"__metadata__\":{{\"k\":\"1\",\"k\":\"2\"}},\"a\":{TwoFloats}}}", 8), "metadata names 'k' twice");
        Refused(Craft($"{{\"__metadata__\":{{}},\"__metadata__\":{{}},\"a\":{TwoFloats}}}", 8), "'__metadata__' twice");
    }

    [Fact]
    public void InvalidUtf8AndLoneSurrogatesAreRefused()
    {
        var header = Encoding.UTF8.GetBytes($"{{\"a\":{TwoFloats},\"bX\":{TwoFloats}}}");
        header[Array.IndexOf(header, (byte)'X')] = 0xC3; // a lead byte followed by '"' is no UTF-8 sequence
        Refused(Craft(header, 16), "not valid UTF-8 JSON");

        Refused(Craft($"{{\"a\\ud800\":{TwoFloats}}}", 8), "header key", "not valid Unicode");
        Refused(Craft($"{{\"__metadata__\":{{\"k\":\"\\udc00\"}},\"a\":{TwoFloats}}}", 8), "metadata entry 'k'", "not valid Unicode");
        Refused(Craft($"{{\"__metadata__\":{{\"\\ud800x\":\"v\"}},\"a\":{TwoFloats}}}", 8), "metadata key", "not valid Unicode");
        Refused(Craft("{\"a\":{\"dtype\":\"F3\\ud800\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8), "dtype of tensor 'a'", "not valid Unicode");
    }

    [Fact]
    public void AFailedWriteLeavesTheOldFileAndNoTemporaryFile()
    {
        var path = PathOf("kept.safetensors");
        SafetensorsWriter.Write(path, new Dictionary<string, Tensor> { ["a"] = ones(3) });
        var before = File.ReadAllBytes(path);

        Assert.Throws<ArgumentException>(() => SafetensorsWriter.Write(path, new Dictionary<string, Tensor> { ["a"] = zeros(2), ["c"] = zeros(2, dtype: ScalarType.ComplexFloat32) }));
        Assert.Throws<IOException>(() => AtomicFileWriter.Write(path, _ => throw new IOException("disk full")));

        Assert.Equal(before, File.ReadAllBytes(path));
        Assert.Equal([path], Directory.GetFiles(folder));
    }
}
