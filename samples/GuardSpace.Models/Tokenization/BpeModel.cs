using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace GuardSpace.Models.Tokenization;

/// <summary>
/// tokenizer.json's BPE <c>model</c>: each word starts as its characters (a character missing from the vocabulary
/// becomes its UTF-8 bytes <c>&lt;0xXX&gt;</c> with <c>byte_fallback</c>, else the unknown token, fused when
/// <c>fuse_unk</c>), then the lowest-ranked merge is applied (leftmost first among equals) until none applies. With
/// <c>ignore_merges</c> a word that is itself in the vocabulary is one token. Merges are read in both formats
/// (<c>"a b"</c> strings and <c>["a", "b"]</c> pairs).
/// </summary>
internal sealed class BpeModel
{
    private readonly Dictionary<string, int> _vocab;
    private readonly Dictionary<(int Left, int Right), (int Rank, int Merged)> _merges;
    private readonly int? _unknown;
    private readonly bool _fuseUnknown;
    private readonly bool _byteFallback;
    private readonly bool _ignoreMerges;
    private readonly int[] _byteIds;

    private BpeModel(Dictionary<string, int> vocab, Dictionary<(int, int), (int, int)> merges, int? unknown, (bool Fuse, bool Bytes, bool Ignore) flags)
    {
        _vocab = vocab;
        _merges = merges;
        _unknown = unknown;
        (_fuseUnknown, _byteFallback, _ignoreMerges) = flags;
        _byteIds = Enumerable.Range(0, 256).Select(b => vocab.TryGetValue($"<0x{b:X2}>", out var id) ? id : -1).ToArray();
        IdToToken = vocab.GroupBy(kv => kv.Value).ToDictionary(g => g.Key, g => g.First().Key);
    }

    /// <summary>Vocabulary entries by id, for decoding.</summary>
    public Dictionary<int, string> IdToToken { get; }

    /// <summary>The id of <paramref name="token"/> in the vocabulary, or null.</summary>
    public int? TokenToId(string token) => _vocab.TryGetValue(token, out var id) ? id : null;

    public static BpeModel Parse(JsonNode? node, TokenizerJsonFields fields)
    {
        const string field = "model";
        var type = fields.Type(node, field);
        if (type is not null and not "BPE")
        {
            throw fields.Unsupported($"{field}.type", $"'{type}' (only BPE models are read)");
        }

        foreach (var affix in new[] { "continuing_subword_prefix", "end_of_word_suffix" })
        {
            if (fields.OptionalString(node, affix, field) is { Length: > 0 } value)
            {
                throw fields.Unsupported($"{field}.{affix}", $"'{value}' (word-piece style BPE)");
            }
        }

        var vocab = ReadVocab(node, fields);
        var merges = ReadMerges(node, fields, vocab);
        var unknownText = fields.OptionalString(node, "unk_token", field);
        int? unknown = unknownText is null ? null : vocab.TryGetValue(unknownText, out var u) ? u : throw fields.Bad($"{field}.unk_token", $"'{unknownText}' is not in model.vocab");
        var flags = (fields.Bool(node, "fuse_unk", field, false), fields.Bool(node, "byte_fallback", field, false), fields.Bool(node, "ignore_merges", field, false));
        return new BpeModel(vocab, merges, unknown, flags);
    }

    /// <summary>The token ids of one pre-tokenized word.</summary>
    public void Encode(string word, List<int> ids)
    {
        if (word.Length == 0)
        {
            return;
        }

        if (_ignoreMerges && _vocab.TryGetValue(word, out var whole))
        {
            ids.Add(whole);
            return;
        }

        var symbols = InitialSymbols(word);
        ApplyMerges(symbols);
        ids.AddRange(symbols.Where(s => s >= 0));
    }

    private List<int> InitialSymbols(string word)
    {
        var symbols = new List<int>(word.Length);
        var lastWasUnknown = false;
        Span<byte> utf8 = stackalloc byte[4];
        foreach (var rune in word.EnumerateRunes())
        {
            var text = rune.ToString();
            if (_vocab.TryGetValue(text, out var id))
            {
                symbols.Add(id);
                lastWasUnknown = false;
            }
            else if (_byteFallback && HasByteTokens(rune, utf8, out var count))
            {
                foreach (var b in utf8[..count])
                {
                    symbols.Add(_byteIds[b]);
                }

                lastWasUnknown = false;
            }
            else if (_unknown is { } unknown)
            {
                // fuse_unk: a run of unknown characters is one unknown token.
                if (!(_fuseUnknown && lastWasUnknown))
                {
                    symbols.Add(unknown);
                }

                lastWasUnknown = true;
            }
        }

        return symbols;
    }

    /// <summary>True when every UTF-8 byte of <paramref name="rune"/> has its <c>&lt;0xXX&gt;</c> token (else the character is unknown).</summary>
    private bool HasByteTokens(Rune rune, Span<byte> utf8, out int count)
    {
        count = rune.EncodeToUtf8(utf8);
        foreach (var b in utf8[..count])
        {
            if (_byteIds[b] < 0)
            {
                return false;
            }
        }

        return true;
    }

    /// <summary>Applies merges lowest rank first, leftmost first among equal ranks; <paramref name="symbols"/> keeps -1 where a symbol was merged away.</summary>
    private void ApplyMerges(List<int> symbols)
    {
        var next = Enumerable.Range(1, symbols.Count).Select(i => i < symbols.Count ? i : -1).ToArray();
        var previous = Enumerable.Range(-1, symbols.Count).ToArray();
        var queue = new PriorityQueue<(int Position, int Merged), (int Rank, int Position)>();
        void Offer(int left)
        {
            if (left >= 0 && next[left] >= 0 && _merges.TryGetValue((symbols[left], symbols[next[left]]), out var merge))
            {
                queue.Enqueue((left, merge.Merged), (merge.Rank, left));
            }
        }

        for (var i = 0; i < symbols.Count - 1; i++)
        {
            Offer(i);
        }

        while (queue.TryDequeue(out var top, out _))
        {
            var left = top.Position;
            var right = symbols[left] < 0 ? -1 : next[left];
            // A stale entry: its symbols changed since it was queued.
            if (right < 0 || !_merges.TryGetValue((symbols[left], symbols[right]), out var merge) || merge.Merged != top.Merged)
            {
                continue;
            }

            symbols[left] = merge.Merged;
            symbols[right] = -1;
            next[left] = next[right];
            if (next[right] >= 0)
            {
                previous[next[right]] = left;
            }

            Offer(previous[left]);
            Offer(left);
        }
    }

    private static Dictionary<string, int> ReadVocab(JsonNode? node, TokenizerJsonFields fields)
    {
        var vocab = (node as JsonObject)?["vocab"] as JsonObject ?? throw fields.Bad("model.vocab", "is not an object");
        var result = new Dictionary<string, int>(vocab.Count, StringComparer.Ordinal);
        foreach (var (token, value) in vocab)
        {
            result[token] = value is JsonValue v && v.TryGetValue<int>(out var id) && id >= 0
                ? id
                : throw fields.Bad($"model.vocab['{token}']", "is not a non-negative integer id");
        }

        return result;
    }

    private static Dictionary<(int, int), (int, int)> ReadMerges(JsonNode? node, TokenizerJsonFields fields, Dictionary<string, int> vocab)
    {
        var merges = fields.Array(node, "merges", "model");
        var result = new Dictionary<(int, int), (int, int)>(merges.Count);
        for (var rank = 0; rank < merges.Count; rank++)
        {
            var (left, right) = MergePair(merges[rank], fields, rank);
            int Id(string token) => vocab.TryGetValue(token, out var id)
                ? id
                : throw fields.Bad($"model.merges[{rank}]", $"names '{token}', which is not in model.vocab");
            // A repeated pair keeps its last rank, as Hugging Face tokenizers does.
            result[(Id(left), Id(right))] = (rank, Id(left + right));
        }

        return result;
    }

    /// <summary>A merge written as <c>"a b"</c> (split at the first space) or as <c>["a", "b"]</c>.</summary>
    private static (string Left, string Right) MergePair(JsonNode? merge, TokenizerJsonFields fields, int rank)
    {
        if (merge is JsonArray { Count: 2 } pair && pair[0] is JsonValue a && a.TryGetValue<string>(out var l) && pair[1] is JsonValue b && b.TryGetValue<string>(out var r))
        {
            return (l, r);
        }

        if (merge is JsonValue v && v.TryGetValue<string>(out var text))
        {
            var space = text.IndexOf(' ', StringComparison.Ordinal);
            if (space > 0 && space < text.Length - 1)
            {
                return (text[..space], text[(space + 1)..]);
            }
        }

        throw fields.Bad($"model.merges[{rank}]", $"is {merge?.ToJsonString(new JsonSerializerOptions { WriteIndented = false }) ?? "null"}, not \"left right\" or [\"left\", \"right\"]");
    }
}
