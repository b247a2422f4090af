using System.Text.Json.Nodes;

namespace GuardSpace.Models.Tokenization;

/// <summary>
/// tokenizer.json's <c>post_processor</c> for one sequence: the special-token ids a <c>TemplateProcessing</c>'s
/// <c>single</c> template puts before and after the text (Llama's BOS). ByteLevel post-processors change no ids;
/// Sequence applies its parts in order.
/// </summary>
internal sealed class PostProcessor
{
    private PostProcessor(int[] before, int[] after)
    {
        Before = before;
        After = after;
    }

    /// <summary>Ids written before the text's ids.</summary>
    public int[] Before { get; }

    /// <summary>Ids written after the text's ids.</summary>
    public int[] After { get; }

    public static PostProcessor Parse(JsonNode? node, TokenizerJsonFields fields, string field = "post_processor")
    {
        if (node is null)
        {
            return new PostProcessor([], []);
        }

        var type = fields.Type(node, field);
        switch (type)
        {
            case "ByteLevel":
                return new PostProcessor([], []);
            case "Sequence":
                // Each processor wraps what the ones before it produced.
                int[] before = [], after = [];
                var parts = fields.Array(node, "processors", field);
                for (var i = 0; i < parts.Count; i++)
                {
                    var part = Parse(parts[i], fields, $"{field}.processors[{i}]");
                    (before, after) = ([.. part.Before, .. before], [.. after, .. part.After]);
                }

                return new PostProcessor(before, after);
            case "TemplateProcessing":
                return Template(node, fields, field);
            default:
                throw fields.Unsupported(field, $"a '{type ?? "untyped"}' post-processor");
        }
    }

    private static PostProcessor Template(JsonNode node, TokenizerJsonFields fields, string field)
    {
        var before = new List<int>();
        var after = new List<int>();
        var seenSequence = false;
        var single = fields.Array(node, "single", field);
        for (var i = 0; i < single.Count; i++)
        {
            var item = single[i];
            if (item?["Sequence"] is not null)
            {
                seenSequence = seenSequence ? throw fields.Bad($"{field}.single", "names the sequence twice") : true;
                continue;
            }

            var name = fields.String(item?["SpecialToken"], "id", $"{field}.single[{i}].SpecialToken");
            var ids = fields.Array(node["special_tokens"]?[name], "ids", $"{field}.special_tokens['{name}']")
                .Select((id, j) => id is JsonValue v && v.TryGetValue<int>(out var n) ? n : throw fields.Bad($"{field}.special_tokens['{name}'].ids[{j}]", "is not an integer"));
            (seenSequence ? after : before).AddRange(ids);
        }

        return new PostProcessor([.. before], [.. after]);
    }
}
