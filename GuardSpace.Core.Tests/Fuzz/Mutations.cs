using System.Buffers.Binary;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace GuardSpace.Tests.Fuzz;

/// <summary>
/// The ways the fuzz test damages a valid file. Each class is a function of the file's bytes and a seeded random source,
/// so a case is reproduced by its seed alone. Safetensors classes rewrite the header and keep the tensor data.
/// </summary>
internal static class Mutations
{
    private const ulong Terabyte = 1UL << 40;

    /// <summary>The classes that apply to any file.</summary>
    public static IReadOnlyList<string> Generic { get; } = ["truncate", "bit-flip", "byte-overwrite", "invalid-utf8"];

    /// <summary>The classes for a safetensors file: its 8-byte length and its JSON header.</summary>
    public static IReadOnlyList<string> Safetensors { get; } =
        ["header-length", "offset-past-end", "offset-terabytes", "overlap", "wrong-dtype", "wrong-shape", "duplicate-key", "json-types", "deep-json", "huge-json"];

    /// <summary>The classes for a JSON file.</summary>
    public static IReadOnlyList<string> Json { get; } = ["duplicate-key", "json-types", "deep-json", "huge-json", "huge-numbers"];

    /// <summary>The classes that apply to <paramref name="file"/>, by its name.</summary>
    public static IReadOnlyList<string> For(string file) =>
        file.EndsWith(".safetensors", StringComparison.Ordinal) ? [.. Generic, .. Safetensors]
        : file.EndsWith(".json", StringComparison.Ordinal) ? [.. Generic, .. Json]
        : Generic;

    public static byte[] Apply(string mutation, byte[] bytes, bool safetensors, Random random) => mutation switch
    {
        "truncate" => bytes[..random.Next(bytes.Length)],
        "bit-flip" => FlipBits(bytes, random),
        "byte-overwrite" => Overwrite(bytes, random),
        "invalid-utf8" => InvalidUtf8(bytes, safetensors, random),
        "header-length" => WithHeaderLength(bytes, random),
        _ when safetensors => EditHeader(bytes, header => EditSafetensorsHeader(mutation, header, random)),
        _ => Encoding.UTF8.GetBytes(EditJson(mutation, Encoding.UTF8.GetString(bytes), random)),
    };

    private static byte[] FlipBits(byte[] bytes, Random random)
    {
        var copy = (byte[])bytes.Clone();
        for (var i = random.Next(1, 9); i > 0; i--)
        {
            copy[random.Next(copy.Length)] ^= (byte)(1 << random.Next(8));
        }

        return copy;
    }

    private static byte[] Overwrite(byte[] bytes, Random random)
    {
        var copy = (byte[])bytes.Clone();
        var start = random.Next(copy.Length);
        var run = Math.Min(copy.Length - start, random.Next(1, 64));
        random.NextBytes(copy.AsSpan(start, run));
        return copy;
    }

    /// <summary>Bytes that are never valid UTF-8 (a lone continuation, an overlong form, 0xFF, a cut sequence), put into text.</summary>
    private static byte[] InvalidUtf8(byte[] bytes, bool safetensors, Random random)
    {
        byte[][] bad = [[0x80], [0xC0, 0xAF], [0xFF], [0xE2, 0x82], [0xED, 0xA0, 0x80]];
        var text = safetensors ? HeaderRange(bytes) : (Start: 0, Length: bytes.Length);
        var at = text.Start + random.Next(Math.Max(1, text.Length));
        var insert = bad[random.Next(bad.Length)];
        var result = new List<byte>(bytes);
        result.InsertRange(Math.Min(at, bytes.Length), insert);
        if (safetensors && result.Count >= 8)
        {
            // Keep the header length right, so the reader must look at the text.
            BinaryPrimitives.WriteUInt64LittleEndian(System.Runtime.InteropServices.CollectionsMarshal.AsSpan(result), (ulong)(text.Length + insert.Length));
        }

        return [.. result];
    }

    private static byte[] WithHeaderLength(byte[] bytes, Random random)
    {
        var copy = (byte[])bytes.Clone();
        if (copy.Length < 8)
        {
            return copy;
        }

        ulong[] lengths = [0, 1, 2, (ulong)copy.Length - 8, (ulong)copy.Length - 7, (ulong)copy.Length + 1000, Terabyte, uint.MaxValue, long.MaxValue, ulong.MaxValue, (ulong)long.MaxValue + 1];
        var value = lengths[random.Next(lengths.Length)];
        BinaryPrimitives.WriteUInt64LittleEndian(copy, value);
        return copy;
    }

    private static (int Start, int Length) HeaderRange(byte[] bytes)
    {
        var length = bytes.Length >= 8 ? BinaryPrimitives.ReadUInt64LittleEndian(bytes) : 0;
        return length <= (ulong)(bytes.Length - 8) ? (8, (int)length) : (0, bytes.Length);
    }

    private static byte[] EditHeader(byte[] bytes, Func<string, string> edit)
    {
        var (start, length) = HeaderRange(bytes);
        var header = Encoding.UTF8.GetBytes(edit(Encoding.UTF8.GetString(bytes, start, length)));
        var result = new byte[8 + header.Length + (bytes.Length - start - length)];
        BinaryPrimitives.WriteUInt64LittleEndian(result, (ulong)header.Length);
        header.CopyTo(result, 8);
        bytes.AsSpan(start + length).CopyTo(result.AsSpan(8 + header.Length));
        return result;
    }

    private static string EditSafetensorsHeader(string mutation, string header, Random random)
    {
        var root = JsonNode.Parse(header)!.AsObject();
        var keys = root.Where(kv => kv.Key != "__metadata__").Select(kv => kv.Key).ToList();
        var entry = root[keys[random.Next(keys.Count)]]!.AsObject();
        var offsets = entry["data_offsets"]!.AsArray();
        var begin = offsets[0]!.GetValue<long>();
        var end = offsets[1]!.GetValue<long>();
        switch (mutation)
        {
            case "offset-past-end":
                entry["data_offsets"] = new JsonArray(begin, end + random.Next(1, 100_000));
                break;
            case "offset-terabytes":
                entry["data_offsets"] = random.Next(3) switch
                {
                    0 => new JsonArray(begin, Terabyte),
                    1 => new JsonArray(Terabyte, Terabyte + (ulong)(end - begin)),
                    _ => new JsonArray(long.MaxValue - 4, long.MaxValue),
                };
                break;
            case "overlap":
                var other = root[keys[random.Next(keys.Count)]]!.AsObject()["data_offsets"]!.AsArray();
                var start = other[0]!.GetValue<long>() + random.Next(0, 3);
                entry["data_offsets"] = new JsonArray(start, start + (end - begin));
                break;
            case "wrong-dtype":
                string[] dtypes = ["F64", "F32", "I8", "U8", "BOOL", "F8_E4M3", "F8_E5M2", "C64", "I4", "", "f32", "BF16 "];
                entry["dtype"] = dtypes[random.Next(dtypes.Length)];
                break;
            case "wrong-shape":
                JsonArray[] shapes = [[], [-1], [0], [1L << 31, 1L << 31], [long.MaxValue], [3, -4], [1, 1, 1, 1, 1, 1, 1, 1, 1, 1], [1L << 20, 1L << 20, 1L << 20], [1.5]];
                entry["shape"] = shapes[random.Next(shapes.Length)].DeepClone();
                break;
            case "duplicate-key":
                return DuplicateFirstKey(header, random);
            default:
                return EditJson(mutation, root.ToJsonString(), random);
        }

        return root.ToJsonString();
    }

    public static string EditJson(string mutation, string json, Random random) => mutation switch
    {
        "duplicate-key" => DuplicateFirstKey(json, random),
        "json-types" => ReplaceRandomValue(json, random, OtherTypeValues),
        "huge-numbers" => ReplaceRandomValue(json, random, HugeNumbers),
        "deep-json" => ReplaceRandomValue(json, random, [new string('[', 100_000) + new string(']', 100_000), Nest(random.Next(65, 2000))]),
        "huge-json" => ReplaceRandomValue(json, random, ['"' + new string('x', 1 << 20) + '"', "[" + string.Join(',', Enumerable.Repeat("0", 1 << 18)) + "]"]),
        _ => throw new ArgumentOutOfRangeException(nameof(mutation), mutation, "no such mutation class"),
    };

    private static readonly string[] OtherTypeValues = ["null", "true", "0", "-1", "1.5", "\"\"", "\"x\"", "[]", "[1,\"a\"]", "{}", "{\"a\":null}"];

    private static readonly string[] HugeNumbers = ["1e308", "1e309", "-1e309", "9223372036854775808", "-9223372036854775809", "18446744073709551616", "1e-400", "4294967296", "2147483648", "-0"];

    private static string Nest(int depth) => string.Concat(Enumerable.Repeat("{\"a\":", depth)) + "1" + new string('}', depth);

    /// <summary>Replaces the value at a random place in the tree (any depth) with one of <paramref name="choices"/>' raw JSON texts other than its own.</summary>
    private static string ReplaceRandomValue(string json, Random random, string[] choices)
    {
        const string marker = "\"__fuzz_marker__\"";
        var root = JsonNode.Parse(json)!;
        var node = root;
        JsonNode? parent = null;
        object? slot = null;
        while (random.Next(3) != 0 && ChildOf(node, random) is { } child)
        {
            (parent, slot, node) = (node, child.Slot, child.Node);
        }

        // A replacement equal to the value it replaces ("true" for true) would be a wasted case.
        var current = node.ToJsonString();
        var different = choices.Where(c => c != current).ToArray();
        if (parent is null)
        {
            return different[random.Next(different.Length)];
        }

        if (parent is JsonObject o)
        {
            o[(string)slot!] = "__fuzz_marker__";
        }
        else
        {
            parent.AsArray()[(int)slot!] = "__fuzz_marker__";
        }

        var text = root.ToJsonString();
        var index = text.IndexOf(marker, StringComparison.Ordinal);
        return string.Concat(text.AsSpan(0, index), different[random.Next(different.Length)], text.AsSpan(index + marker.Length));
    }

    private static (object Slot, JsonNode Node)? ChildOf(JsonNode node, Random random)
    {
        switch (node)
        {
            case JsonObject o when o.Count > 0:
                var (key, value) = o.ElementAt(random.Next(o.Count));
                return value is null ? null : (key, value);
            case JsonArray a when a.Count > 0:
                var i = random.Next(a.Count);
                return a[i] is { } item ? (i, item) : null;
            default:
                return null;
        }
    }

    /// <summary>Writes one top-level member twice: the second copy holds a value of another type.</summary>
    private static string DuplicateFirstKey(string json, Random random)
    {
        using var document = JsonDocument.Parse(json);
        var members = document.RootElement.EnumerateObject().ToList();
        var member = members[random.Next(members.Count)];
        var duplicate = $"{JsonSerializer.Serialize(member.Name)}:{OtherTypeValues[random.Next(OtherTypeValues.Length)]},";
        var brace = json.IndexOf('{', StringComparison.Ordinal);
        return random.Next(2) == 0
            ? json.Insert(brace + 1, duplicate)
            : json.Insert(json.LastIndexOf('}'), "," + duplicate.TrimEnd(','));
    }
}
