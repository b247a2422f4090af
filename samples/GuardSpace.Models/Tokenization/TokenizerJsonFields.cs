using System.Text.Json.Nodes;

namespace GuardSpace.Models.Tokenization;

/// <summary>Typed reads of tokenizer.json fields that fail with an error naming the file and the field.</summary>
internal sealed class TokenizerJsonFields(string path)
{
    /// <summary>The file being read, for messages.</summary>
    public string Path { get; } = path;

    public InvalidDataException Bad(string field, string problem) =>
        new($"'{Path}': {field} {problem}; the file is not a tokenizer.json written by Hugging Face tokenizers (re-save it with tokenizer.save_pretrained).");

    public NotSupportedException Unsupported(string field, string what) =>
        new($"'{Path}': {field} is {what}, which this tokenizer does not implement (see docs/getting-started.md, 'Tokenizer kinds').");

    public string? Type(JsonNode? node, string field) => OptionalString(node, "type", field);

    public string String(JsonNode? node, string key, string field) =>
        OptionalString(node, key, field) ?? throw Bad($"{field}.{key}", "is missing");

    public string? OptionalString(JsonNode? node, string key, string field)
    {
        var value = (node as JsonObject)?[key];
        if (value is null)
        {
            return null;
        }

        return value is JsonValue v && v.TryGetValue<string>(out var s) ? s : throw Bad($"{field}.{key}", "is not a string");
    }

    public bool Bool(JsonNode? node, string key, string field, bool fallback)
    {
        var value = (node as JsonObject)?[key];
        if (value is null)
        {
            return fallback;
        }

        return value is JsonValue v && v.TryGetValue<bool>(out var b) ? b : throw Bad($"{field}.{key}", "is not true or false");
    }

    public int Int(JsonNode? node, string key, string field, int? fallback = null)
    {
        var value = (node as JsonObject)?[key];
        if (value is null)
        {
            return fallback ?? throw Bad($"{field}.{key}", "is missing");
        }

        return value is JsonValue v && v.TryGetValue<int>(out var i) ? i : throw Bad($"{field}.{key}", "is not a 32-bit integer");
    }

    public JsonArray Array(JsonNode? node, string key, string field) =>
        (node as JsonObject)?[key] as JsonArray ?? throw Bad($"{field}.{key}", "is not a list");

    /// <summary>A pattern object: <c>{"String": "..."}</c> (a literal) or <c>{"Regex": "..."}</c>.</summary>
    public (string Text, bool IsRegex) Pattern(JsonNode? node, string field)
    {
        var pattern = (node as JsonObject)?["pattern"];
        if (OptionalString(pattern, "String", $"{field}.pattern") is { } literal)
        {
            return (literal, false);
        }

        return OptionalString(pattern, "Regex", $"{field}.pattern") is { } regex
            ? (regex, true)
            : throw Bad($"{field}.pattern", "has neither String nor Regex");
    }
}
