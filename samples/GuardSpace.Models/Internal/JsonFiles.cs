using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace GuardSpace.Models.Internal;

/// <summary>
/// Reads the JSON files of a model folder (config, tokenizer, tokenizer config, shard index) as hostile input: strict
/// UTF-8, no repeated key, bounded nesting; every failure is an <see cref="InvalidDataException"/> naming the file.
/// </summary>
internal static class JsonFiles
{
    /// <summary>Nesting allowed by default; tokenizer.json's Sequence components nest deeper than configs do.</summary>
    public const int DefaultMaxDepth = 64;

    private static readonly UTF8Encoding StrictUtf8 = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);

    /// <summary>Reads <paramref name="path"/>, which must hold one JSON object.</summary>
    /// <exception cref="InvalidDataException">Not UTF-8, not JSON, not an object, a repeated key or too deep (the message names the file).</exception>
    public static JsonObject ReadObject(string path, int maxDepth = DefaultMaxDepth)
    {
        string text;
        try
        {
            text = File.ReadAllText(path, StrictUtf8);
        }
        catch (DecoderFallbackException ex)
        {
            throw new InvalidDataException($"'{path}' is not valid UTF-8 ({ex.Message}).", ex);
        }

        try
        {
            // A repeated key would otherwise surface later, as an ArgumentException from whichever reader touched it first.
            var options = new JsonDocumentOptions { MaxDepth = maxDepth, AllowDuplicateProperties = false };
            return JsonNode.Parse(text, documentOptions: options) as JsonObject
                ?? throw new InvalidDataException($"'{path}' does not hold a JSON object.");
        }
        catch (JsonException ex)
        {
            throw new InvalidDataException($"'{path}' is not valid JSON: {ex.Message}", ex);
        }
    }
}
