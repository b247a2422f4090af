using System.Text.Json.Nodes;

namespace GuardSpace.Models.Tokenization;

/// <summary>
/// tokenizer.json's <c>pre_tokenizer</c>: cuts each normalized piece into the words the model encodes one by one.
/// Implemented: ByteLevel, Split (literal or regex, every behaviour, invert), Metaspace, Digits and Sequence.
/// </summary>
internal abstract class PreTokenizer
{
    // GPT-2's pre-tokenization, which a ByteLevel pre-tokenizer with use_regex = true applies before mapping bytes.
    private const string Gpt2Pattern = @"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+";

    public abstract IEnumerable<TextPiece> Split(TextPiece piece);

    /// <summary>The pre-tokenizer described by <paramref name="node"/>, or null when there is none.</summary>
    public static PreTokenizer? Parse(JsonNode? node, TokenizerJsonFields fields, string field = "pre_tokenizer")
    {
        if (node is null)
        {
            return null;
        }

        var type = fields.Type(node, field);
        return type switch
        {
            "Sequence" => new SequencePreTokenizer(fields.Array(node, "pretokenizers", field)
                .Select((n, i) => Parse(n, fields, $"{field}.pretokenizers[{i}]") ?? throw fields.Bad($"{field}.pretokenizers[{i}]", "is null")).ToArray()),
            "ByteLevel" => new ByteLevel(
                fields.Bool(node, "add_prefix_space", field, true),
                fields.Bool(node, "use_regex", field, true) ? new UnicodeRegex(Gpt2Pattern, field) : null),
            "Split" => ParseSplit(node, fields, field),
            "Metaspace" => Metaspace.Read(node, fields, field),
            "Digits" => new Digits(fields.Bool(node, "individual_digits", field, false)),
            _ => throw fields.Unsupported(field, $"a '{type ?? "untyped"}' pre-tokenizer"),
        };
    }

    private static Pattern ParseSplit(JsonNode node, TokenizerJsonFields fields, string field)
    {
        var (text, isRegex) = fields.Pattern(node, field);
        if (text.Length == 0)
        {
            throw fields.Bad($"{field}.pattern", "is empty");
        }

        Func<string, List<(int Start, int Length)>> find = isRegex
            ? new UnicodeRegex(text, $"'{fields.Path}': {field}.pattern.Regex").Matches
            : t => TextNormalizer.LiteralMatches(t, text);
        var behavior = PieceSplitter.ParseBehavior(fields.OptionalString(node, "behavior", field), fields, field);
        return new Pattern(find, behavior, fields.Bool(node, "invert", field, false));
    }

    private sealed class SequencePreTokenizer(PreTokenizer[] steps) : PreTokenizer
    {
        public override IEnumerable<TextPiece> Split(TextPiece piece) =>
            steps.Aggregate<PreTokenizer, IEnumerable<TextPiece>>([piece], (pieces, step) => pieces.SelectMany(step.Split));
    }

    private sealed class Pattern(Func<string, List<(int Start, int Length)>> find, SplitBehavior behavior, bool invert) : PreTokenizer
    {
        public override IEnumerable<TextPiece> Split(TextPiece piece) => PieceSplitter.Split(piece, find(piece.Text), behavior, invert);
    }

    /// <summary>Optionally a leading space and GPT-2's split, then every UTF-8 byte as its stand-in character.</summary>
    private sealed class ByteLevel(bool addPrefixSpace, UnicodeRegex? gpt2) : PreTokenizer
    {
        public override IEnumerable<TextPiece> Split(TextPiece piece)
        {
            if (addPrefixSpace && !piece.Text.StartsWith(' '))
            {
                piece = piece with { Text = " " + piece.Text };
            }

            var pieces = gpt2 is null ? [piece] : PieceSplitter.Split(piece, gpt2.Matches(piece.Text), SplitBehavior.Isolated, invert: false);
            return pieces.Select(p => p with { Text = ByteLevelAlphabet.Encode(p.Text) });
        }
    }

    private sealed class Digits(bool individual) : PreTokenizer
    {
        private static readonly UnicodeRegex Runs = new(@"\p{N}+", "Digits");
        private static readonly UnicodeRegex Single = new(@"\p{N}", "Digits");

        public override IEnumerable<TextPiece> Split(TextPiece piece) =>
            PieceSplitter.Split(piece, (individual ? Single : Runs).Matches(piece.Text), SplitBehavior.Isolated, invert: false);
    }

    /// <summary>SentencePiece-style spaces: every space becomes the replacement (<c>▁</c>), a leading one is added (always, or only at the start of the input), and optionally the text is cut before each.</summary>
    private sealed class Metaspace(string replacement, string prependScheme, bool split) : PreTokenizer
    {
        public static Metaspace Read(JsonNode node, TokenizerJsonFields fields, string field)
        {
            var replacement = fields.OptionalString(node, "replacement", field) ?? "▁";
            var scheme = fields.OptionalString(node, "prepend_scheme", field)
                ?? (fields.Bool(node, "add_prefix_space", field, true) ? "always" : "never");
            return scheme is "always" or "first" or "never"
                ? new Metaspace(replacement, scheme, fields.Bool(node, "split", field, true))
                : throw fields.Bad($"{field}.prepend_scheme", $"is '{scheme}', not always, first or never");
        }

        public override IEnumerable<TextPiece> Split(TextPiece piece)
        {
            var text = piece.Text.Replace(" ", replacement, StringComparison.Ordinal);
            var prepend = prependScheme == "always" || (prependScheme == "first" && piece.AtStart);
            if (prepend && !text.StartsWith(replacement, StringComparison.Ordinal))
            {
                text = replacement + text;
            }

            piece = piece with { Text = text };
            return split
                ? PieceSplitter.Split(piece, TextNormalizer.LiteralMatches(text, replacement), SplitBehavior.MergedWithNext, invert: false)
                : [piece];
        }
    }
}
