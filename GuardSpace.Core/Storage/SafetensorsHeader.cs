using System.Text;
using System.Text.Json;

namespace GuardSpace.Storage;

/// <summary>
/// Builds and checks the JSON header of a safetensors file. Parsing treats the file as hostile: every field is checked
/// before anything is allocated from it, and every refusal is an <see cref="InvalidDataException"/> naming the file and
/// the field.
/// </summary>
internal static class SafetensorsHeader
{
    /// <summary>The reserved header key for the string-to-string metadata map.</summary>
    public const string MetadataKey = "__metadata__";

    /// <summary>The reference implementation refuses headers above 100 MB; so do we.</summary>
    public const long MaxLength = 100_000_000;

    /// <summary>The UTF-8 JSON header, padded with spaces to a multiple of 8 bytes as the reference writer does.</summary>
    public static byte[] Build(IEnumerable<SafetensorsEntry> entries, IReadOnlyDictionary<string, string>? metadata)
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

            foreach (var entry in entries)
            {
                writer.WriteStartObject(entry.Name);
                writer.WriteString("dtype", entry.Dtype);
                writer.WriteStartArray("shape");
                foreach (var d in entry.Shape)
                {
                    writer.WriteNumberValue(d);
                }

                writer.WriteEndArray();
                writer.WriteStartArray("data_offsets");
                writer.WriteNumberValue(entry.Begin);
                writer.WriteNumberValue(entry.End);
                writer.WriteEndArray();
                writer.WriteEndObject();
            }

            writer.WriteEndObject();
        }

        var length = (int)buffer.Length;
        var header = new byte[(length + 7) / 8 * 8];
        buffer.GetBuffer().AsSpan(0, length).CopyTo(header);
        header.AsSpan(length).Fill((byte)' ');
        return header;
    }

    /// <summary>
    /// Parses <paramref name="header"/> and checks that the tensors' byte ranges tile the <paramref name="dataLength"/>-byte
    /// data section exactly (no overlap, hole or trailing byte). Returns the entries by name and the metadata.
    /// </summary>
    public static (Dictionary<string, SafetensorsEntry> Entries, Dictionary<string, string> Metadata) Parse(string path, byte[] header, long dataLength)
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

            var entries = new Dictionary<string, SafetensorsEntry>(StringComparer.Ordinal);
            var metadata = new Dictionary<string, string>(StringComparer.Ordinal);
            var sawMetadata = false;
            foreach (var property in document.RootElement.EnumerateObject())
            {
                var name = NameOf(path, property, "a header key");
                if (name == MetadataKey)
                {
                    sawMetadata = sawMetadata ? throw Invalid(path, $"the header names '{MetadataKey}' twice.") : true;
                    ParseMetadata(path, property.Value, metadata);
                }
                else if (!entries.TryAdd(name, ParseEntry(path, name, property.Value)))
                {
                    throw Invalid(path, $"the header names tensor '{name}' twice.");
                }
            }

            CheckTiling(path, entries.Values, dataLength);
            return (entries, metadata);
        }
    }

    /// <summary>The exception every refusal throws: the file, then what is wrong with it.</summary>
    public static InvalidDataException Invalid(string path, string what, Exception? inner = null) =>
        new($"Safetensors file '{path}' is invalid: {what}", inner);

    private static void ParseMetadata(string path, JsonElement value, Dictionary<string, string> metadata)
    {
        if (value.ValueKind != JsonValueKind.Object)
        {
            throw Invalid(path, $"'{MetadataKey}' is a JSON {value.ValueKind}, not an object of strings.");
        }

        foreach (var item in value.EnumerateObject())
        {
            var key = NameOf(path, item, "a metadata key");
            if (item.Value.ValueKind != JsonValueKind.String)
            {
                throw Invalid(path, $"metadata entry '{key}' is a JSON {item.Value.ValueKind}, not a string.");
            }

            if (!metadata.TryAdd(key, StringOf(path, item.Value, $"metadata entry '{key}'")))
            {
                throw Invalid(path, $"the metadata names '{key}' twice.");
            }
        }
    }

    private static SafetensorsEntry ParseEntry(string path, string name, JsonElement value)
    {
        if (value.ValueKind != JsonValueKind.Object)
        {
            throw Invalid(path, $"the entry for tensor '{name}' is a JSON {value.ValueKind}, not an object.");
        }

        if (!value.TryGetProperty("dtype", out var dtypeElement) || dtypeElement.ValueKind != JsonValueKind.String)
        {
            throw Invalid(path, $"tensor '{name}' has no string 'dtype'.");
        }

        var dtypeName = StringOf(path, dtypeElement, $"the dtype of tensor '{name}'");
        var dtype = SafetensorsDtypes.FromName(dtypeName)
            ?? throw Invalid(path, $"tensor '{name}' has the unknown or unsupported dtype '{dtypeName}' (supported: {SafetensorsDtypes.SupportedList}).");

        if (!value.TryGetProperty("shape", out var shapeElement) || shapeElement.ValueKind != JsonValueKind.Array)
        {
            throw Invalid(path, $"tensor '{name}' has no 'shape' array.");
        }

        // No capacity from the file's counts: the list grows only as far as the header really goes.
        var shape = new List<long>();
        foreach (var d in shapeElement.EnumerateArray())
        {
            shape.Add(d.ValueKind == JsonValueKind.Number && d.TryGetInt64(out var dim) && dim >= 0
                ? dim
                : throw Invalid(path, $"tensor '{name}' has a shape entry '{d}' that is not a non-negative integer."));
        }

        if (!value.TryGetProperty("data_offsets", out var offsetsElement) || offsetsElement.ValueKind != JsonValueKind.Array || offsetsElement.GetArrayLength() != 2)
        {
            throw Invalid(path, $"tensor '{name}' has no 'data_offsets' array of two integers.");
        }

        var offsets = new long[2];
        for (var i = 0; i < 2; i++)
        {
            var o = offsetsElement[i];
            if (o.ValueKind != JsonValueKind.Number || !o.TryGetInt64(out offsets[i]) || offsets[i] < 0)
            {
                throw Invalid(path, $"tensor '{name}' has a data offset '{o}' that is not a non-negative integer.");
            }
        }

        if (offsets[1] < offsets[0])
        {
            throw Invalid(path, $"tensor '{name}' has data_offsets [{offsets[0]}, {offsets[1]}] whose end precedes its start.");
        }

        long expected;
        try
        {
            expected = checked(shape.Aggregate(1L, (a, b) => checked(a * b)) * dtype.Size);
        }
        catch (OverflowException)
        {
            throw Invalid(path, $"tensor '{name}' has a shape [{string.Join(", ", shape)}] too large to address.");
        }

        if (offsets[1] - offsets[0] != expected)
        {
            throw Invalid(path,
                $"tensor '{name}' ({dtypeName}, shape [{string.Join(", ", shape)}]) needs {expected} bytes but its data_offsets [{offsets[0]}, {offsets[1]}] span {offsets[1] - offsets[0]}.");
        }

        return new SafetensorsEntry(name, dtypeName, dtype.Type, [.. shape], offsets[0], offsets[1]);
    }

    private static void CheckTiling(string path, IEnumerable<SafetensorsEntry> entries, long dataLength)
    {
        long position = 0;
        foreach (var entry in entries.OrderBy(s => s.Begin).ThenBy(s => s.End))
        {
            if (entry.Begin < position)
            {
                throw Invalid(path, $"tensor '{entry.Name}' starts at data offset {entry.Begin}, inside the previous tensor (which ends at {position}): offsets overlap.");
            }

            if (entry.Begin > position)
            {
                throw Invalid(path, $"tensor '{entry.Name}' starts at data offset {entry.Begin}, leaving a hole after offset {position}.");
            }

            position = entry.End;
        }

        if (position != dataLength)
        {
            var what = dataLength < position ? "is truncated" : "has trailing bytes";
            throw Invalid(path, $"the data buffer {what}: the offsets end at {position} but the file holds {dataLength} data bytes after the header.");
        }
    }

    // JSON escapes can spell lone UTF-16 surrogates ("\ud800"), which no .NET string decoded from UTF-8 may hold.
    private static string NameOf(string path, JsonProperty property, string what)
    {
        try
        {
            return property.Name;
        }
        catch (InvalidOperationException ex)
        {
            throw Invalid(path, $"{what} is not valid Unicode (a lone surrogate escape?): {ex.Message}", ex);
        }
    }

    private static string StringOf(string path, JsonElement element, string what)
    {
        try
        {
            return element.GetString()!;
        }
        catch (InvalidOperationException ex)
        {
            throw Invalid(path, $"{what} is not valid Unicode (a lone surrogate escape?): {ex.Message}", ex);
        }
    }
}
