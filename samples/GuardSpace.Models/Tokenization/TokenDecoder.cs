using System.Globalization;
using System.Text;
using System.Text.Json.Nodes;

namespace GuardSpace.Models.Tokenization;

/// <summary>
/// tokenizer.json's <c>decoder</c>: turns the tokens of some ids back into text. Implemented: ByteLevel, Metaspace,
/// Replace, ByteFallback, Fuse, Strip and Sequence; without a decoder the tokens are joined with spaces.
/// </summary>
internal abstract class TokenDecoder
{
    public abstract List<string> Decode(List<string> tokens);

    public static TokenDecoder? Parse(JsonNode? node, TokenizerJsonFields fields, string field = "decoder")
    {
        if (node is null)
        {
            return null;
        }

        var type = fields.Type(node, field);
        return type switch
        {
            "Sequence" => new SequenceDecoder(fields.Array(node, "decoders", field)
                .Select((n, i) => Parse(n, fields, $"{field}.decoders[{i}]") ?? throw fields.Bad($"{field}.decoders[{i}]", "is null")).ToArray()),
            "ByteLevel" => new ByteLevel(),
            "Metaspace" => new Metaspace(
                fields.OptionalString(node, "replacement", field) ?? "▁",
                (fields.OptionalString(node, "prepend_scheme", field) ?? (fields.Bool(node, "add_prefix_space", field, true) ? "always" : "never")) != "never"),
            "Replace" => ParseReplace(node, fields, field),
            "ByteFallback" => new ByteFallback(),
            "Fuse" => new Fuse(),
            "Strip" => new Strip(fields.String(node, "content", field), fields.Int(node, "start", field, 0), fields.Int(node, "stop", field, 0)),
            _ => throw fields.Unsupported(field, $"a '{type ?? "untyped"}' decoder"),
        };
    }

    private static Replace ParseReplace(JsonNode node, TokenizerJsonFields fields, string field)
    {
        var (pattern, isRegex) = fields.Pattern(node, field);
        return isRegex || pattern.Length == 0
            ? throw fields.Unsupported($"{field}.pattern", "a regex or empty pattern in a Replace decoder")
            : new Replace(pattern, fields.String(node, "content", field));
    }

    private sealed class SequenceDecoder(TokenDecoder[] steps) : TokenDecoder
    {
        public override List<string> Decode(List<string> tokens) => steps.Aggregate(tokens, (t, step) => step.Decode(t));
    }

    /// <summary>All tokens' stand-in characters back to bytes, read as UTF-8 (invalid bytes become U+FFFD).</summary>
    private sealed class ByteLevel : TokenDecoder
    {
        public override List<string> Decode(List<string> tokens) =>
            [Encoding.UTF8.GetString(tokens.SelectMany(ByteLevelAlphabet.Decode).ToArray())];
    }

    private sealed class Metaspace(string replacement, bool stripLeadingSpace) : TokenDecoder
    {
        public override List<string> Decode(List<string> tokens) => tokens.Select((token, i) =>
        {
            var text = token.Replace(replacement, " ", StringComparison.Ordinal);
            return i == 0 && stripLeadingSpace && text.StartsWith(' ') ? text[1..] : text;
        }).ToList();
    }

    private sealed class Replace(string pattern, string content) : TokenDecoder
    {
        public override List<string> Decode(List<string> tokens) => tokens.Select(t => t.Replace(pattern, content, StringComparison.Ordinal)).ToList();
    }

    /// <summary>Runs of <c>&lt;0xXX&gt;</c> tokens become the text of their bytes (U+FFFD per byte when they are not valid UTF-8).</summary>
    private sealed class ByteFallback : TokenDecoder
    {
        public override List<string> Decode(List<string> tokens)
        {
            var result = new List<string>(tokens.Count);
            var bytes = new List<byte>();
            void Flush()
            {
                if (bytes.Count == 0)
                {
                    return;
                }

                var strict = new UTF8Encoding(false, throwOnInvalidBytes: true);
                try
                {
                    result.Add(strict.GetString(bytes.ToArray()));
                }
                catch (DecoderFallbackException)
                {
                    result.AddRange(bytes.Select(_ => "\uFFFD"));
                }

                bytes.Clear();
            }

            foreach (var token in tokens)
            {
                if (token.Length == 6 && token.StartsWith("<0x", StringComparison.Ordinal) && token[5] == '>'
                    && byte.TryParse(token.AsSpan(3, 2), NumberStyles.HexNumber, CultureInfo.InvariantCulture, out var b))
                {
                    bytes.Add(b);
                }
                else
                {
                    Flush();
                    result.Add(token);
                }
            }

            Flush();
            return result;
        }
    }

    private sealed class Fuse : TokenDecoder
    {
        public override List<string> Decode(List<string> tokens) => [string.Concat(tokens)];
    }

    /// <summary>Removes up to <c>start</c> leading and <c>stop</c> trailing copies of <c>content</c> from each token.</summary>
    private sealed class Strip(string content, int start, int stop) : TokenDecoder
    {
        public override List<string> Decode(List<string> tokens) => tokens.Select(token =>
        {
            var from = 0;
            while (from < start && token.AsSpan(from).StartsWith(content, StringComparison.Ordinal))
            {
                from += content.Length;
            }

            var to = token.Length;
            for (var n = 0; n < stop && to - content.Length >= from && token.AsSpan(0, to).EndsWith(content, StringComparison.Ordinal); n++)
            {
                to -= content.Length;
            }

            return token[from..to];
        }).ToList();
    }
}
