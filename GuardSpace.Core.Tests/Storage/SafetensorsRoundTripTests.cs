using System.Buffers.Binary;
using System.Text;
using System.Text.Json;
using GuardSpace.Storage;
using GuardSpace.Tests.TestUtilities;
using TorchSharp;
using static TorchSharp.torch;

namespace GuardSpace.Tests.Storage;

public sealed class SafetensorsRoundTripTests : IDisposable
{
    private readonly TempDirectory folder = TempDirectory.Create("guardspace-st-");

    public void Dispose() => folder.Dispose();

    private string PathOf(string name) => Path.Combine(folder, name);

    private static bool BitEqual(Tensor a, Tensor b)
    {
        using var ca = a.contiguous();
        using var cb = b.contiguous();
        return a.dtype == b.dtype && a.shape.SequenceEqual(b.shape) && ca.bytes.SequenceEqual(cb.bytes);
    }

    /// <summary>Builds a file the way Python's safetensors lays it out: length, JSON padded with spaces to 8, data.</summary>
    private static byte[] HandBuilt(string headerJson, byte[] data, bool pad = true)
    {
        var header = Encoding.UTF8.GetBytes(headerJson);
        var length = pad ? (header.Length + 7) / 8 * 8 : header.Length;
        var bytes = new byte[8 + length + data.Length];
        BinaryPrimitives.WriteUInt64LittleEndian(bytes, (ulong)length);
        header.CopyTo(bytes, 8);
        bytes.AsSpan(8 + header.Length, length - header.Length).Fill((byte)' ');
        data.CopyTo(bytes, 8 + length);
        return bytes;
    }

    [Theory]
    [InlineData(ScalarType.Float64)]
    [InlineData(ScalarType.Float32)]
    [InlineData(ScalarType.Float16)]
    [InlineData(ScalarType.BFloat16)]
    [InlineData(ScalarType.Int64)]
    [InlineData(ScalarType.Int32)]
    [InlineData(ScalarType.Int16)]
    [InlineData(ScalarType.Int8)]
    [InlineData(ScalarType.Byte)]
    [InlineData(ScalarType.Bool)]
    public void EveryDtypeRoundTripsBitExactly(ScalarType type)
    {
        using var g = new Generator(7);
        var source = randn(new long[] { 3, 5 }, ScalarType.Float64, generator: g) * 50;
        var t = type == ScalarType.Bool ? source.gt(0) : source.to_type(type);
        var path = PathOf($"{type}.safetensors");
        SafetensorsWriter.Write(path, new Dictionary<string, Tensor> { ["t"] = t });
        var (tensors, metadata) = SafetensorsReader.ReadAll(path);
        Assert.Empty(metadata);
        Assert.True(BitEqual(t, tensors["t"]), type.ToString());

        var header = ReadHeader(path);
        Assert.Equal(SafetensorsDtypes.NameOf(type), header.GetProperty("t").GetProperty("dtype").GetString());
    }

    [Fact]
    public void NonContiguousScalarAndEmptyTensorsRoundTripWithoutTouchingTheCallersTensors()
    {
        using var g = new Generator(8);
        var baseTensor = randn(new long[] { 4, 6 }, ScalarType.Float32, generator: g);
        var transposed = baseTensor.T;
        var strided = baseTensor[.., TensorIndex.Slice(0, 6, 2)];
        var scalar = tensor(3.25);
        var emptyTensor = zeros(new long[] { 0, 3 }, ScalarType.Int32);
        var inputs = new Dictionary<string, Tensor> { ["b.transposed"] = transposed, ["a.strided"] = strided, ["scalar"] = scalar, ["empty"] = emptyTensor };
        var path = PathOf("mixed.safetensors");
        SafetensorsWriter.Write(path, inputs);

        Assert.False(transposed.is_contiguous());
        Assert.Equal(new long[] { 1, 6 }, transposed.stride());
        var (read, _) = SafetensorsReader.ReadAll(path);
        Assert.True(BitEqual(transposed, read["b.transposed"]));
        Assert.True(BitEqual(strided, read["a.strided"]));
        Assert.Equal(0, read["scalar"].dim());
        Assert.Equal(3.25, read["scalar"].item<double>());
        Assert.Equal(new long[] { 0, 3 }, read["empty"].shape);
        Assert.Equal(ScalarType.Int32, read["empty"].dtype);

        // Keys sorted, offsets contiguous in that order, header padded to 8.
        var header = ReadHeader(path);
        Assert.Equal(["a.strided", "b.transposed", "empty", "scalar"], header.EnumerateObject().Select(p => p.Name));
        long expected = 0;
        foreach (var p in header.EnumerateObject())
        {
            var offsets = p.Value.GetProperty("data_offsets");
            Assert.Equal(expected, offsets[0].GetInt64());
            expected = offsets[1].GetInt64();
        }

        var bytes = File.ReadAllBytes(path);
        var headerLength = (long)BinaryPrimitives.ReadUInt64LittleEndian(bytes);
        Assert.Equal(0, headerLength % 8);
        Assert.Equal(8 + headerLength + expected, bytes.Length);
        Assert.Empty(Directory.GetFiles(folder, "*.tmp"));
    }

    [Fact]
    public void MetadataRoundTrips()
    {
        var path = PathOf("meta.safetensors");
        var metadata = new Dictionary<string, string> { ["format"] = "pt", ["groups"] = "[{\"key\":\"q\"}]", ["ünïcode"] = "naïve \"quoted\"\n" };
        SafetensorsWriter.Write(path, new Dictionary<string, Tensor> { ["x"] = ones(2) }, metadata);
        var (tensors, read) = SafetensorsReader.ReadAll(path);
        Assert.Equal(metadata.OrderBy(kv => kv.Key), read.OrderBy(kv => kv.Key));
        Assert.Single(tensors);
        Assert.Equal(JsonValueKind.Object, ReadHeader(path).GetProperty("__metadata__").ValueKind);
    }

    [Fact]
    public void OverwritingALongerFileLeavesExactlyTheNewFile()
    {
        var path = PathOf("over.safetensors");
        SafetensorsWriter.Write(path, new Dictionary<string, Tensor> { ["big"] = ones(1000, dtype: ScalarType.Float64), ["other"] = ones(10) });
        var longLength = new FileInfo(path).Length;
        SafetensorsWriter.Write(path, new Dictionary<string, Tensor> { ["small"] = arange(3, dtype: ScalarType.Int64) });
        var bytes = File.ReadAllBytes(path);
        var headerLength = (long)BinaryPrimitives.ReadUInt64LittleEndian(bytes);
        Assert.True(bytes.Length < longLength);
        Assert.Equal(8 + headerLength + (3 * 8), bytes.Length);
        var (tensors, _) = SafetensorsReader.ReadAll(path);
        Assert.Equal(["small"], tensors.Keys);
        Assert.Equal(new long[] { 0, 1, 2 }, tensors["small"].data<long>().ToArray());
    }

    [Fact]
    public void PythonStyleHandBuiltFileReadsBack()
    {
        // fc.weight: F32 [2, 3] = 0.5 -1 2 3.25 4 -5.5; fc.bias64: F64 [3] = 1 2 3; flag: BOOL [2]; h: BF16 [1] = 1.0
        var data = new List<byte>();
        foreach (var f in new[] { 0.5f, -1f, 2f, 3.25f, 4f, -5.5f })
        {
            data.AddRange(BitConverter.GetBytes(f));
        }

        foreach (var d in new[] { 1.0, 2.0, 3.0 })
        {
            data.AddRange(BitConverter.GetBytes(d));
        }

        data.AddRange(new byte[] { 1, 0 });
        data.AddRange(new byte[] { 0x80, 0x3F });
        const string json = "{\"__metadata__\":{\"format\":\"pt\"},\"fc.bias64\":{\"dtype\":\"F64\",\"shape\":[3],\"data_offsets\":[24,48]}," +
            "\"fc.weight\":{\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[0,24]},\"flag\":{\"dtype\":\"BOOL\",\"shape\":[2],\"data_offsets\":[48,50]}," +
            "\"h\":{\"dtype\":\"BF16\",\"shape\":[1],\"data_offsets\":[50,52]}}";
        var path = PathOf("python.safetensors");
        File.WriteAllBytes(path, HandBuilt(json, [.. data]));

        var (tensors, metadata) = SafetensorsReader.ReadAll(path);
        Assert.Equal("pt", metadata["format"]);
        Assert.Equal(new long[] { 2, 3 }, tensors["fc.weight"].shape);
        Assert.Equal(new[] { 0.5f, -1f, 2f, 3.25f, 4f, -5.5f }, tensors["fc.weight"].data<float>().ToArray());
        Assert.Equal(new[] { 1.0, 2.0, 3.0 }, tensors["fc.bias64"].data<double>().ToArray());
        Assert.Equal(new[] { true, false }, tensors["flag"].data<bool>().ToArray());
        Assert.Equal(1.0f, tensors["h"].to_type(ScalarType.Float32).item<float>());
    }

    [Fact]
    public void MalformedFilesThrowInvalidDataExceptionNamingFileAndProblem()
    {
        var path = PathOf("bad.safetensors");
        var good = PathOf("good.safetensors");
        SafetensorsWriter.Write(good, new Dictionary<string, Tensor> { ["a"] = ones(4), ["b"] = zeros(2, 2) }, new Dictionary<string, string> { ["k"] = "v" });
        var bytes = File.ReadAllBytes(good);

        void Expect(byte[] content, string fragment)
        {
            File.WriteAllBytes(path, content);
            var ex = Assert.Throws<InvalidDataException>(() => SafetensorsReader.ReadAll(path));
            Assert.Contains(path, ex.Message);
            Assert.Contains(fragment, ex.Message);
        }

        Expect(bytes[..5], "fewer than the 8-byte");
        Expect(bytes[..^1], "truncated");
        Expect([.. bytes, 0, 0], "trailing bytes");

        var flipped = (byte[])bytes.Clone();
        flipped[8] ^= 0xFF; // the opening '{' of the JSON
        Expect(flipped, "not valid UTF-8 JSON");

        var hugeLength = (byte[])bytes.Clone();
        BinaryPrimitives.WriteUInt64LittleEndian(hugeLength, (ulong)bytes.Length);
        Expect(hugeLength, "beyond the end of the file");

        var data16 = new byte[16];
        Expect(HandBuilt("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}", data16[..12]), "overlap");
        Expect(HandBuilt("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,16]},\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,4]}}", data16), "needs 8 bytes");
        Expect(HandBuilt("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,0]}}", data16[..8]), "end precedes its start");
        Expect(HandBuilt("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,16]}}", data16), "hole");
        Expect(HandBuilt("{\"a\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", data16[..8]), "needs 12 bytes");
        Expect(HandBuilt("{\"a\":{\"dtype\":\"C64\",\"shape\":[1],\"data_offsets\":[0,8]}}", data16[..8]), "unknown or unsupported dtype 'C64'");
        Expect(HandBuilt("{\"a\":{\"dtype\":\"F32\",\"shape\":[-1],\"data_offsets\":[0,4]}}", data16[..4]), "non-negative integer");
        Expect(HandBuilt("{\"__metadata__\":{\"n\":1}}", []), "not a string");
        Expect(HandBuilt("[1,2]", []), "not an object");

        // Guard: a well-formed hand-built file of the same kind reads.
        File.WriteAllBytes(path, HandBuilt("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,16]}}", data16));
        Assert.Equal(2, SafetensorsReader.ReadAll(path).Tensors.Count);
    }

    [Fact]
    public void UnsupportedDtypeAndReservedNameAreRejectedOnWrite()
    {
        var path = PathOf("reject.safetensors");
        Assert.Throws<ArgumentException>(() => SafetensorsWriter.Write(path, new Dictionary<string, Tensor> { ["c"] = zeros(2, dtype: ScalarType.ComplexFloat32) }));
        Assert.Throws<ArgumentException>(() => SafetensorsWriter.Write(path, new Dictionary<string, Tensor> { ["__metadata__"] = zeros(2) }));
        Assert.False(File.Exists(path));
        Assert.Empty(Directory.GetFiles(folder));
    }

    private static JsonElement ReadHeader(string path)
    {
        var bytes = File.ReadAllBytes(path);
        var length = (int)BinaryPrimitives.ReadUInt64LittleEndian(bytes);
        using var doc = JsonDocument.Parse(bytes.AsMemory(8, length));
        return doc.RootElement.Clone();
    }
}
