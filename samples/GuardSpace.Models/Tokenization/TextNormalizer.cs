using System.Globalization;
using System.Text;
using System.Text.Json.Nodes;

namespace GuardSpace.Models.Tokenization;

/// <summary>
/// tokenizer.json's <c>normalizer</c>: NFC, NFD, NFKC, NFKD, Lowercase, StripAccents, Strip, Prepend, Replace (a
/// literal or a regex) and Sequence of these. Each text between added tokens is normalized on its own.
/// </summary>
internal abstract class TextNormalizer
{
    public abstract string Normalize(string text);

    /// <summary>The normalizer described by <paramref name="node"/>, or null when there is none.</summary>
    public static TextNormalizer? Parse(JsonNode? node, TokenizerJsonFields fields, string field = "normalizer")
    {
        if (node is null)
        {
            return null;
        }

        var type = fields.Type(node, field);
        return type switch
        {
            "Sequence" => new SequenceNormalizer(fields.Array(node, "normalizers", field)
                .Select((n, i) => Parse(n, fields, $"{field}.normalizers[{i}]") ?? throw fields.Bad($"{field}.normalizers[{i}]", "is null")).ToArray()),
            "NFC" => new UnicodeForm(NormalizationForm.FormC),
            "NFD" => new UnicodeForm(NormalizationForm.FormD),
            "NFKC" => new UnicodeForm(NormalizationForm.FormKC),
            "NFKD" => new UnicodeForm(NormalizationForm.FormKD),
            "Lowercase" => new Lowercase(),
            "StripAccents" => new StripAccents(),
            "Strip" => new Strip(fields.Bool(node, "strip_left", field, true), fields.Bool(node, "strip_right", field, true)),
            "Prepend" => new Prepend(fields.String(node, "prepend", field)),
            "Replace" => Replace.Read(node, fields, field),
            _ => throw fields.Unsupported(field, $"a '{type ?? "untyped"}' normalizer"),
        };
    }

    private sealed class SequenceNormalizer(TextNormalizer[] steps) : TextNormalizer
    {
        public override string Normalize(string text) => steps.Aggregate(text, (t, step) => step.Normalize(t));
    }

    private sealed class UnicodeForm(NormalizationForm form) : TextNormalizer
    {
        public override string Normalize(string text) => text.Normalize(form);
    }

    private sealed class Lowercase : TextNormalizer
    {
        public override string Normalize(string text) => text.ToLowerInvariant();
    }

    private sealed class StripAccents : TextNormalizer
    {
        public override string Normalize(string text) =>
            string.Concat(text.Where(c => CharUnicodeInfo.GetUnicodeCategory(c) != UnicodeCategory.NonSpacingMark));
    }

    private sealed class Strip(bool left, bool right) : TextNormalizer
    {
        public override string Normalize(string text) => (left, right) switch
        {
            (true, true) => text.Trim(),
            (true, false) => text.TrimStart(),
            (false, true) => text.TrimEnd(),
            _ => text,
        };
    }

    /// <summary>Prepends its text to every non-empty text (SentencePiece's dummy prefix <c>▁</c> in Llama 2 style files).</summary>
    private sealed class Prepend(string prefix) : TextNormalizer
    {
        public override string Normalize(string text) => text.Length == 0 ? text : prefix + text;
    }

    private sealed class Replace(Func<string, List<(int Start, int Length)>> find, string content) : TextNormalizer
    {
        public static Replace Read(JsonNode node, TokenizerJsonFields fields, string field)
        {
            var (pattern, isRegex) = fields.Pattern(node, field);
            var content = fields.String(node, "content", field);
            if (isRegex)
            {
                var regex = new UnicodeRegex(pattern, $"'{fields.Path}': {field}.pattern.Regex");
                return new Replace(regex.Matches, content);
            }

            return pattern.Length == 0 ? throw fields.Bad($"{field}.pattern.String", "is empty") : new Replace(t => LiteralMatches(t, pattern), content);
        }

        public override string Normalize(string text)
        {
            var matches = find(text);
            if (matches.Count == 0)
            {
                return text;
            }

            var result = new StringBuilder(text.Length);
            var done = 0;
            foreach (var (start, length) in matches)
            {
                result.Append(text, done, start - done).Append(content);
                done = start + length;
            }

            return result.Append(text, done, text.Length - done).ToString();
        }
    }

    /// <summary>Non-overlapping occurrences of <paramref name="literal"/>, left to right.</summary>
    public static List<(int Start, int Length)> LiteralMatches(string text, string literal)
    {
        var found = new List<(int, int)>();
        for (var i = text.IndexOf(literal, StringComparison.Ordinal); i >= 0; i = text.IndexOf(literal, i + literal.Length, StringComparison.Ordinal))
        {
            found.Add((i, literal.Length));
        }

        return found;
    }
}
