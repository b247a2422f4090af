using System.Text.Json;

namespace GuardSpace.Models.Data;

/// <summary>
/// Reads prompt and training files in two formats, chosen by content: JSON Lines (the first non-blank line starts with
/// <c>{</c>), one object per line with a string <c>prompt</c> and an optional string <c>response</c> (other fields are
/// ignored); or plain text, one prompt per line. Blank lines are skipped in both; a UTF-8 byte-order mark is allowed.
/// </summary>
public static class PromptFile
{
    /// <summary>
    /// Reads every example of <paramref name="path"/>. Throws <see cref="FileNotFoundException"/> when it is missing and
    /// <see cref="InvalidDataException"/> naming the file and the line for a malformed JSON line, a missing or non-string
    /// <c>prompt</c>, or a file with no examples.
    /// </summary>
    public static IReadOnlyList<PromptExample> Read(string path)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(path);
        if (!File.Exists(path))
        {
            throw new FileNotFoundException($"Prompt file '{path}' is missing.", path);
        }

        var lines = File.ReadAllLines(path);
        var jsonl = lines.FirstOrDefault(l => !string.IsNullOrWhiteSpace(l))?.TrimStart().StartsWith('{') == true;
        var examples = new List<PromptExample>();
        for (var i = 0; i < lines.Length; i++)
        {
            var line = lines[i];
            if (string.IsNullOrWhiteSpace(line))
            {
                continue;
            }

            examples.Add(jsonl ? ParseJsonLine(path, i + 1, line) : new PromptExample(line.Trim(), null));
        }

        if (examples.Count == 0)
        {
            throw new InvalidDataException($"Prompt file '{path}' holds no prompts (one per line, or JSON Lines with \"prompt\").");
        }

        return examples;
    }

    /// <summary>The prompts of <paramref name="path"/> (responses ignored).</summary>
    public static IReadOnlyList<string> ReadPrompts(string path) => [.. Read(path).Select(e => e.Prompt)];

    private static PromptExample ParseJsonLine(string path, int lineNumber, string line)
    {
        try
        {
            using var document = JsonDocument.Parse(line);
            var root = document.RootElement;
            if (root.ValueKind != JsonValueKind.Object || !root.TryGetProperty("prompt", out var prompt) || prompt.ValueKind != JsonValueKind.String)
            {
                throw new InvalidDataException($"'{path}' line {lineNumber}: each JSON line needs a string \"prompt\" (and optionally a string \"response\").");
            }

            string? response = null;
            if (root.TryGetProperty("response", out var r) && r.ValueKind != JsonValueKind.Null)
            {
                response = r.ValueKind == JsonValueKind.String
                    ? r.GetString()
                    : throw new InvalidDataException($"'{path}' line {lineNumber}: \"response\" must be a string.");
            }

            return new PromptExample(prompt.GetString()!, response);
        }
        catch (JsonException ex)
        {
            throw new InvalidDataException($"'{path}' line {lineNumber} is not valid JSON ({ex.Message}). A file whose first line starts with '{{' is read as JSON Lines.", ex);
        }
    }
}
