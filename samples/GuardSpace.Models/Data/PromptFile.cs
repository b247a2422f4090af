using System.Text.Json;

namespace GuardSpace.Models.Data;

/// <summary>
/// Reads prompt and training files in two formats, chosen by content: JSON Lines (the first non-blank line starts with
/// <c>{</c>), one object per line with a string <c>prompt</c>, an optional string <c>response</c> and an optional boolean
/// <c>chat</c> (other fields are ignored); or plain text, one prompt per line, where a line may start with
/// <c>[chat]</c> or <c>[raw]</c> and a space. <c>chat</c> / <c>[chat]</c> marks a prompt to render with the model's chat
/// template (<see cref="PromptExample.Chat"/>); without a mark a prompt is raw, as files written before templates meant.
/// Blank lines are skipped in both; a UTF-8 byte-order mark is allowed.
/// </summary>
public static class PromptFile
{
    /// <summary>The marks a plain-text line may start with, and whether each applies the chat template.</summary>
    private static readonly (string Mark, bool Chat)[] Marks = [("[chat]", true), ("[raw]", false)];

    /// <summary>
    /// Reads every example of <paramref name="path"/>. Throws <see cref="FileNotFoundException"/> when it is missing and
    /// <see cref="InvalidDataException"/> naming the file and the line for a malformed JSON line, a missing or non-string
    /// <c>prompt</c>, a non-boolean <c>chat</c>, a <c>[chat]</c>/<c>[raw]</c> mark with no prompt after it, or a file with
    /// no examples.
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

            examples.Add(jsonl ? ParseJsonLine(path, i + 1, line) : ParseTextLine(path, i + 1, line));
        }

        if (examples.Count == 0)
        {
            throw new InvalidDataException($"Prompt file '{path}' holds no prompts (one per line, or JSON Lines with \"prompt\").");
        }

        return examples;
    }

    /// <summary>The prompts of <paramref name="path"/> (responses ignored).</summary>
    public static IReadOnlyList<string> ReadPrompts(string path) => [.. Read(path).Select(e => e.Prompt)];

    private static PromptExample ParseTextLine(string path, int lineNumber, string line)
    {
        var text = line.Trim();
        foreach (var (mark, chat) in Marks)
        {
            if (text.StartsWith(mark, StringComparison.Ordinal) && (text.Length == mark.Length || char.IsWhiteSpace(text[mark.Length])))
            {
                var prompt = text[mark.Length..].Trim();
                return prompt.Length > 0
                    ? new PromptExample(prompt, null, chat)
                    : throw new InvalidDataException($"'{path}' line {lineNumber}: '{mark}' is followed by no prompt.");
            }
        }

        return new PromptExample(text, null);
    }

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

            var chat = false;
            if (root.TryGetProperty("chat", out var c) && c.ValueKind != JsonValueKind.Null)
            {
                chat = c.ValueKind is JsonValueKind.True or JsonValueKind.False
                    ? c.GetBoolean()
                    : throw new InvalidDataException($"'{path}' line {lineNumber}: \"chat\" must be true or false (true renders the prompt with the model's chat template).");
            }

            return new PromptExample(prompt.GetString()!, response, chat);
        }
        catch (JsonException ex)
        {
            throw new InvalidDataException($"'{path}' line {lineNumber} is not valid JSON ({ex.Message}). A file whose first line starts with '{{' is read as JSON Lines.", ex);
        }
    }
}
