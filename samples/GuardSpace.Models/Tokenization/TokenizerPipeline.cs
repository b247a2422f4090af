using System.Text.Json;
using System.Text.Json.Nodes;
using GuardSpace.Models.Internal;

namespace GuardSpace.Models.Tokenization;

/// <summary>
/// A Hugging Face <c>tokenizer.json</c> run the way Hugging Face tokenizers runs it: added tokens are cut out of the
/// text (those with <c>normalized: false</c> before normalizing, the others after), each remaining piece is normalized,
/// pre-tokenized and encoded by the BPE model, and the post-processor's template adds the special tokens.
/// </summary>
public sealed class TokenizerPipeline
{
    private readonly AddedTokenSplitter _rawTokens;
    private readonly AddedTokenSplitter _normalizedTokens;
    private readonly TextNormalizer? _normalizer;
    private readonly PreTokenizer? _preTokenizer;
    private readonly BpeModel _model;
    private readonly PostProcessor _postProcessor;
    private readonly TokenDecoder? _decoder;
    private readonly Dictionary<int, AddedToken> _addedById;

    private TokenizerPipeline(string path, JsonObject root)
    {
        var fields = new TokenizerJsonFields(path);
        AddedTokens = ReadAddedTokens(root, fields);
        _normalizer = TextNormalizer.Parse(root["normalizer"], fields);

        // A normalized added token is matched, and decoded, as its normalized text (Llama 2's "x" becomes "▁x").
        var asMatched = AddedTokens.Select(t => t.Normalized && _normalizer is not null ? t with { Content = _normalizer.Normalize(t.Content) } : t).ToList();
        _addedById = asMatched.GroupBy(t => t.Id).ToDictionary(g => g.Key, g => g.Last());
        _rawTokens = new AddedTokenSplitter(asMatched.Where(t => !t.Normalized));
        _normalizedTokens = new AddedTokenSplitter(asMatched.Where(t => t.Normalized));
        _preTokenizer = PreTokenizer.Parse(root["pre_tokenizer"], fields);
        _model = BpeModel.Parse(root["model"], fields);
        _postProcessor = PostProcessor.Parse(root["post_processor"], fields);
        _decoder = TokenDecoder.Parse(root["decoder"], fields);
    }

    /// <summary>The added tokens (special or not) in file order.</summary>
    public IReadOnlyList<AddedToken> AddedTokens { get; }

    /// <summary>The special-token ids the post-processor writes before a single sequence (Llama's BOS), possibly none.</summary>
    public IReadOnlyList<int> TemplatePrefix => _postProcessor.Before;

    /// <summary>Reads <paramref name="path"/>.</summary>
    /// <exception cref="InvalidDataException">The file is not valid JSON or a field is malformed (the message names it).</exception>
    /// <exception cref="NotSupportedException">The file uses a component that is not implemented (the message names it).</exception>
    public static TokenizerPipeline Load(string path)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(path);
        var root = JsonFiles.ReadObject(path, maxDepth: 256);

        try
        {
            return new TokenizerPipeline(path, root);
        }
        catch (Exception ex) when (ex is ArgumentException or InvalidOperationException or FormatException)
        {
            // System.Text.Json reports a repeated key or a value of the wrong kind this way.
            throw new InvalidDataException($"'{path}' is not a valid tokenizer.json: {ex.Message}", ex);
        }
    }

    /// <summary>The id of a token (an added token or a vocabulary entry), or null.</summary>
    public int? TokenToId(string token) => AddedTokens.LastOrDefault(t => t.Content == token)?.Id ?? _model.TokenToId(token);

    /// <summary>The ids of <paramref name="text"/>; with <paramref name="addSpecialTokens"/> the post-processor's template is applied.</summary>
    public List<int> Encode(string text, bool addSpecialTokens)
    {
        ArgumentNullException.ThrowIfNull(text);
        var ids = new List<int>(_postProcessor.Before.Length + (text.Length / 2));
        if (addSpecialTokens)
        {
            ids.AddRange(_postProcessor.Before);
        }

        foreach (var (start, length, token) in _rawTokens.Split(text))
        {
            if (token is not null)
            {
                ids.Add(token.Id);
                continue;
            }

            var normalized = _normalizer?.Normalize(text.Substring(start, length)) ?? text.Substring(start, length);
            foreach (var (nStart, nLength, nToken) in _normalizedTokens.Split(normalized))
            {
                if (nToken is not null)
                {
                    ids.Add(nToken.Id);
                    continue;
                }

                var piece = new TextPiece(normalized.Substring(nStart, nLength), start == 0 && nStart == 0);
                foreach (var word in _preTokenizer?.Split(piece) ?? [piece])
                {
                    _model.Encode(word.Text, ids);
                }
            }
        }

        if (addSpecialTokens)
        {
            ids.AddRange(_postProcessor.After);
        }

        return ids;
    }

    /// <summary>The text of <paramref name="ids"/> through the decoder; special tokens are kept unless <paramref name="skipSpecialTokens"/>; unknown ids are skipped.</summary>
    public string Decode(IEnumerable<int> ids, bool skipSpecialTokens = false)
    {
        ArgumentNullException.ThrowIfNull(ids);
        var tokens = new List<string>();
        foreach (var id in ids)
        {
            if (_addedById.TryGetValue(id, out var added))
            {
                if (!(skipSpecialTokens && added.Special))
                {
                    tokens.Add(added.Content);
                }
            }
            else if (_model.IdToToken.TryGetValue(id, out var token))
            {
                tokens.Add(token);
            }
        }

        return _decoder is null ? string.Join(' ', tokens) : string.Concat(_decoder.Decode(tokens));
    }

    private static List<AddedToken> ReadAddedTokens(JsonObject root, TokenizerJsonFields fields)
    {
        if (root["added_tokens"] is null)
        {
            return [];
        }

        var list = fields.Array(root, "added_tokens", "tokenizer.json");
        return list.Select((node, i) =>
        {
            var field = $"added_tokens[{i}]";
            var special = fields.Bool(node, "special", field, false);
            return new AddedToken(
                fields.Int(node, "id", field),
                fields.String(node, "content", field),
                fields.Bool(node, "single_word", field, false),
                fields.Bool(node, "lstrip", field, false),
                fields.Bool(node, "rstrip", field, false),
                fields.Bool(node, "normalized", field, !special),
                special);
        }).ToList();
    }
}
