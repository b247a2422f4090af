using System.Text.Json;
using GuardSpace.Models.Llama;
using GuardSpace.Models.Tokenization;
using GuardSpace.Storage;
using static TorchSharp.torch;

namespace GuardSpace.Models.Export;

/// <summary>
/// The model's logits for a list of prompts as a JSON file, to compare this stack with another (transformers, vLLM, a
/// merged export). Format (<see cref="FormatName"/>, version 1):
/// <code>
/// { "format": "guardspace-logits", "version": 1, "architecture": "LlamaForCausalLM", "vocab_size": 32000,
///   "all_positions": false,
///   "prompts": [ { "text": "...", "token_ids": [1, 2], "first_position": 1, "logits": [[0.1, ...]] } ] }
/// </code>
/// Each prompt runs alone (no padding); <c>logits</c> holds one row per position from <c>first_position</c> to the last,
/// as float32 values written so they read back exactly.
/// </summary>
public static class LogitsDump
{
    /// <summary>The <c>format</c> field.</summary>
    public const string FormatName = "guardspace-logits";

    /// <summary>
    /// Tokenizes each prompt with <paramref name="tokenizer"/> (with its BOS setting), runs <paramref name="model"/> and writes
    /// the last position's logits (every position's when <paramref name="allPositions"/>) to <paramref name="file"/>,
    /// through a temporary file.
    /// </summary>
    public static void Write(LlamaForCausalLM model, HfTokenizer tokenizer, IEnumerable<string> prompts, string file, bool allPositions = false)
    {
        ArgumentNullException.ThrowIfNull(tokenizer);
        ArgumentNullException.ThrowIfNull(prompts);
        Write(model, [.. prompts.Select(p => (p, tokenizer.Encode(p)))], file, allPositions);
    }

    /// <summary>As <see cref="Write(LlamaForCausalLM, HfTokenizer, IEnumerable{string}, string, bool)"/>, for prompts already tokenized.</summary>
    public static void Write(LlamaForCausalLM model, IReadOnlyList<(string Text, IReadOnlyList<int> TokenIds)> prompts, string file, bool allPositions = false)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(prompts);
        ArgumentException.ThrowIfNullOrWhiteSpace(file);
        var entries = prompts.Select(p => Run(model, p.Text, p.TokenIds, allPositions)).ToList();
        AtomicFileWriter.Write(file, stream =>
        {
            using var json = new Utf8JsonWriter(stream, new JsonWriterOptions { Indented = false });
            WriteJson(json, model.Config, entries, allPositions);
        });
    }

    /// <summary>Reads a dump written by <see cref="Write(LlamaForCausalLM, HfTokenizer, IEnumerable{string}, string, bool)"/>; throws <see cref="InvalidDataException"/> naming the file and the field when it is not one.</summary>
    public static IReadOnlyList<LogitsDumpEntry> Read(string file)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(file);
        try
        {
            using var document = JsonDocument.Parse(File.ReadAllBytes(file));
            var root = document.RootElement;
            if (!root.TryGetProperty("format", out var format) || format.GetString() != FormatName)
            {
                throw new InvalidDataException($"'{file}': 'format' is not \"{FormatName}\"; this is not a logits dump.");
            }

            return [.. root.GetProperty("prompts").EnumerateArray().Select(p => new LogitsDumpEntry(
                p.GetProperty("text").GetString() ?? string.Empty,
                [.. p.GetProperty("token_ids").EnumerateArray().Select(e => e.GetInt32())],
                p.GetProperty("first_position").GetInt32(),
                [.. p.GetProperty("logits").EnumerateArray().Select(row => row.EnumerateArray().Select(v => v.GetSingle()).ToArray())]))];
        }
        catch (Exception ex) when (ex is JsonException or KeyNotFoundException or InvalidOperationException or FormatException)
        {
            throw new InvalidDataException($"'{file}' is not a valid logits dump: {ex.Message}", ex);
        }
    }

    private static LogitsDumpEntry Run(LlamaForCausalLM model, string text, IReadOnlyList<int> ids, bool allPositions)
    {
        if (ids.Count == 0)
        {
            throw new ArgumentException($"The prompt \"{text}\" has no tokens; a logits dump needs at least one.", nameof(ids));
        }

        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var device = model.parameters().First().device;
        var logits = model.call(tensor(ids.Select(i => (long)i).ToArray(), device: device).unsqueeze(0))[0];
        var first = allPositions ? 0 : ids.Count - 1;
        var rows = logits.narrow(0, first, ids.Count - first).to_type(ScalarType.Float32).cpu();
        var vocab = (int)rows.shape[1];
        var values = rows.data<float>().ToArray();
        if (!values.All(float.IsFinite))
        {
            throw new InvalidOperationException($"The logits of the prompt \"{text}\" are not finite (NaN or infinity); nothing was written.");
        }

        var list = Enumerable.Range(0, (int)rows.shape[0]).Select(r => values.AsSpan(r * vocab, vocab).ToArray()).ToList();
        return new LogitsDumpEntry(text, ids, first, list);
    }

    private static void WriteJson(Utf8JsonWriter json, LlamaConfig config, List<LogitsDumpEntry> entries, bool allPositions)
    {
        json.WriteStartObject();
        json.WriteString("format", FormatName);
        json.WriteNumber("version", 1);
        json.WriteString("architecture", config.Architecture);
        json.WriteNumber("vocab_size", config.VocabSize);
        json.WriteBoolean("all_positions", allPositions);
        json.WriteStartArray("prompts");
        foreach (var entry in entries)
        {
            json.WriteStartObject();
            json.WriteString("text", entry.Text);
            json.WriteStartArray("token_ids");
            foreach (var id in entry.TokenIds)
            {
                json.WriteNumberValue(id);
            }

            json.WriteEndArray();
            json.WriteNumber("first_position", entry.FirstPosition);
            json.WriteStartArray("logits");
            foreach (var row in entry.Logits)
            {
                json.WriteStartArray();
                foreach (var value in row)
                {
                    json.WriteNumberValue(value);
                }

                json.WriteEndArray();
            }

            json.WriteEndArray();
            json.WriteEndObject();
        }

        json.WriteEndArray();
        json.WriteEndObject();
    }
}
