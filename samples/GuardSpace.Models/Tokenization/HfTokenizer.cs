using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using GuardSpace.Models.Llama;
using Microsoft.ML.Tokenizers;

namespace GuardSpace.Models.Tokenization;

/// <summary>
/// The tokenizer of a Hugging Face model folder, built with Microsoft.ML.Tokenizers 2.0 (which reads no
/// <c>tokenizer.json</c> itself):
/// <list type="bullet">
/// <item><c>tokenizer.json</c> with a byte-level BPE model (GPT-2, Llama 3, Qwen2, Mistral-Nemo style): its vocabulary,
/// merges, added tokens and <c>Split</c> regex (or the GPT-2 regex of a <c>ByteLevel</c> pre-tokenizer) go into a
/// <see cref="BpeTokenizer"/>;</item>
/// <item>otherwise <c>tokenizer.model</c>, a SentencePiece model (Llama 1/2, Mistral 7B, TinyLlama): a
/// <see cref="SentencePieceTokenizer"/> (BPE or Unigram).</item>
/// </list>
/// Not supported, with an error that says so: WordPiece/Unigram <c>tokenizer.json</c> files without a
/// <c>tokenizer.model</c>, normalizers other than NFC, byte-level pre-tokenizers with <c>add_prefix_space</c>, Meta's original tiktoken-format
/// <c>tokenizer.model</c>, and chat templates (prompts are tokenized as given).
/// </summary>
public sealed class HfTokenizer
{
    /// <summary>The Hugging Face tokenizer file.</summary>
    public const string TokenizerJsonFile = "tokenizer.json";

    /// <summary>The SentencePiece model file.</summary>
    public const string SentencePieceFile = "tokenizer.model";

    /// <summary>The tokenizer settings file (<c>add_bos_token</c>, <c>bos_token</c>, <c>eos_token</c>).</summary>
    public const string TokenizerConfigFile = "tokenizer_config.json";

    // GPT-2's pre-tokenization, used by a ByteLevel pre-tokenizer with use_regex = true.
    private const string Gpt2Pattern = @"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+";

    private readonly bool _nfc;

    private HfTokenizer(Tokenizer inner, string source, int? bos, int? eos, bool addBos, bool nfc = false)
    {
        _nfc = nfc;
        Inner = inner;
        Source = source;
        BosId = bos;
        EosId = eos;
        AddBos = addBos;
    }

    /// <summary>The Microsoft.ML.Tokenizers tokenizer.</summary>
    public Tokenizer Inner { get; }

    /// <summary>What was loaded, for logs: the file and the kind of model.</summary>
    public string Source { get; }

    /// <summary>The beginning-of-sequence id, if the model has one.</summary>
    public int? BosId { get; }

    /// <summary>The end-of-sequence id generation stops at, if the model has one.</summary>
    public int? EosId { get; }

    /// <summary>True when <see cref="Encode"/> starts every sequence with <see cref="BosId"/>.</summary>
    public bool AddBos { get; }

    /// <summary>Token ids of <paramref name="text"/>, after <see cref="BosId"/> when <see cref="AddBos"/> is set and <paramref name="withBos"/> is true.</summary>
    public IReadOnlyList<int> Encode(string text, bool withBos = true)
    {
        ArgumentNullException.ThrowIfNull(text);
        var ids = Inner.EncodeToIds(_nfc ? text.Normalize(System.Text.NormalizationForm.FormC) : text);
        return withBos && AddBos && BosId is { } bos ? [bos, .. ids] : ids;
    }

    /// <summary>The text of <paramref name="ids"/> (special tokens included as text).</summary>
    public string Decode(IEnumerable<int> ids) => Inner.Decode(ids);

    /// <summary>
    /// Loads the tokenizer of the model folder <paramref name="directory"/> (see the class remarks for what is supported).
    /// BOS/EOS ids come from <paramref name="config"/> when given, else from <c>tokenizer_config.json</c>.
    /// </summary>
    /// <exception cref="FileNotFoundException">The folder has neither tokenizer.json nor tokenizer.model.</exception>
    /// <exception cref="NotSupportedException">The tokenizer kind is not one Microsoft.ML.Tokenizers can build here.</exception>
    /// <exception cref="InvalidDataException">A tokenizer file is malformed.</exception>
    public static HfTokenizer Load(string directory, LlamaConfig? config = null)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(directory);
        var json = Path.Combine(directory, TokenizerJsonFile);
        var model = Path.Combine(directory, SentencePieceFile);
        var settings = ReadObject(Path.Combine(directory, TokenizerConfigFile));
        string? jsonProblem = null;
        if (File.Exists(json))
        {
            var root = ReadObject(json)!;
            jsonProblem = ByteLevelProblem(json, root);
            if (jsonProblem is null)
            {
                var (tokenizer, added) = ByteLevelBpe(json, root);
                var templateBos = TemplateBos(root);
                var (bos, eos) = SpecialIds(config, settings, added);
                bos ??= templateBos;
                var addBos = settings?["add_bos_token"]?.GetValue<bool>() ?? (bos is not null && templateBos == bos);
                var nfc = root["normalizer"]?["type"]?.GetValue<string>() == "NFC";
                return new HfTokenizer(tokenizer, $"{json} (byte-level BPE{(nfc ? ", NFC" : string.Empty)})", bos, eos, addBos, nfc);
            }
        }

        if (File.Exists(model))
        {
            using var stream = File.OpenRead(model);
            if (stream.ReadByte() != 0x0A)
            {
                throw new NotSupportedException(
                    $"'{model}' is not a SentencePiece model (protobuf). Meta's original Llama 3 tokenizer.model is a tiktoken file; use the Hugging Face conversion of the model, whose tokenizer.json is read here.");
            }

            stream.Position = 0;
            SentencePieceTokenizer tokenizer;
            try
            {
                tokenizer = SentencePieceTokenizer.Create(stream, addBeginningOfSentence: false, addEndOfSentence: false);
            }
            catch (Exception ex) when (ex is ArgumentException or InvalidOperationException or Google.Protobuf.InvalidProtocolBufferException or NotSupportedException)
            {
                throw new InvalidDataException($"'{model}' could not be read as a SentencePiece model: {ex.Message}", ex);
            }

            var bos = config?.BosTokenId ?? (tokenizer.BeginningOfSentenceId >= 0 ? tokenizer.BeginningOfSentenceId : null);
            int? eos = config is { EosTokenIds.Count: > 0 } ? config.EosTokenIds[0] : tokenizer.EndOfSentenceId >= 0 ? tokenizer.EndOfSentenceId : null;
            var addBos = settings?["add_bos_token"]?.GetValue<bool>() ?? true;
            return new HfTokenizer(tokenizer, $"{model} (SentencePiece)", bos, eos, addBos);
        }

        if (jsonProblem is not null)
        {
            throw new NotSupportedException($"{jsonProblem} The folder has no {SentencePieceFile} to fall back on.");
        }

        throw new FileNotFoundException($"'{directory}' has neither {TokenizerJsonFile} nor {SentencePieceFile}; copy the model's tokenizer files next to config.json.", json);
    }

    /// <summary>Null when <paramref name="root"/> is a byte-level BPE this class can build, else why not.</summary>
    private static string? ByteLevelProblem(string path, JsonObject root)
    {
        var type = root["model"]?["type"]?.GetValue<string>();
        if (type != "BPE")
        {
            return $"'{path}' holds a {type ?? "untyped"} model; only byte-level BPE tokenizer.json files are read here.";
        }

        var pre = Flatten(root["pre_tokenizer"]).ToList();
        var byteLevel = pre.FirstOrDefault(p => p["type"]?.GetValue<string>() == "ByteLevel");
        if (byteLevel is null)
        {
            return $"'{path}' is a BPE without a ByteLevel pre-tokenizer (SentencePiece style); Microsoft.ML.Tokenizers builds such models from {SentencePieceFile}.";
        }

        var normalizer = root["normalizer"]?["type"]?.GetValue<string>();
        if (normalizer is not null and not "NFC")
        {
            return $"'{path}': normalizer '{normalizer}' is not supported (none or NFC are).";
        }

        if (byteLevel["add_prefix_space"]?.GetValue<bool>() == true)
        {
            return $"'{path}': ByteLevel with add_prefix_space = true is not supported.";
        }

        return null;
    }

    private static (Tokenizer Tokenizer, Dictionary<string, int> Added) ByteLevelBpe(string path, JsonObject root)
    {
        InvalidDataException Bad(string what) => new($"'{path}' is not a valid byte-level BPE tokenizer.json: {what}.");
        try
        {
            var bpe = root["model"] as JsonObject ?? throw Bad("no model object");
            var vocab = (bpe["vocab"] as JsonObject ?? throw Bad("model.vocab is not an object"))
                .Select(kv => new KeyValuePair<string, int>(kv.Key, kv.Value?.GetValue<int>() ?? throw Bad($"vocab['{kv.Key}'] is null"))).ToList();
            var merges = (bpe["merges"] as JsonArray ?? throw Bad("model.merges is not a list"))
                .Select(m => m is JsonArray pair && pair.Count == 2 ? $"{pair[0]?.GetValue<string>()} {pair[1]?.GetValue<string>()}" : m?.GetValue<string>() ?? throw Bad("a merge is null")).ToList();
            var added = (root["added_tokens"] as JsonArray ?? []).OfType<JsonObject>().ToDictionary(
                t => t["content"]?.GetValue<string>() ?? throw Bad("an added token has no content"),
                t => t["id"]?.GetValue<int>() ?? throw Bad("an added token has no id"),
                StringComparer.Ordinal);
            var pre = Flatten(root["pre_tokenizer"]).ToList();
            var split = pre.FirstOrDefault(p => p["type"]?.GetValue<string>() == "Split")?["pattern"]?["Regex"]?.GetValue<string>();
            var useGpt2 = pre.First(p => p["type"]?.GetValue<string>() == "ByteLevel")["use_regex"]?.GetValue<bool>() ?? true;
            var pattern = split ?? (useGpt2 ? Gpt2Pattern : @"\s*\S+");
            var options = new BpeOptions(vocab)
            {
                Merges = merges,
                ByteLevel = true,
                SpecialTokens = added,
                PreTokenizer = new RegexPreTokenizer(new Regex(pattern, RegexOptions.Compiled), added),
            };
            return (BpeTokenizer.Create(options), added);
        }
        catch (Exception ex) when (ex is InvalidOperationException or FormatException or ArgumentException)
        {
            throw new InvalidDataException($"'{path}' is not a valid byte-level BPE tokenizer.json: {ex.Message}", ex);
        }
    }

    private static (int? Bos, int? Eos) SpecialIds(LlamaConfig? config, JsonObject? settings, Dictionary<string, int> added)
    {
        int? Lookup(string key) => TokenText(settings?[key]) is { } text && added.TryGetValue(text, out var id) ? id : null;
        var bos = config?.BosTokenId ?? Lookup("bos_token");
        var eos = config is { EosTokenIds.Count: > 0 } ? config.EosTokenIds[0] : Lookup("eos_token");
        return (bos, eos);
    }

    /// <summary>A token in tokenizer_config.json is a string or an object with <c>content</c>.</summary>
    private static string? TokenText(JsonNode? node) => node switch
    {
        JsonValue v when v.TryGetValue<string>(out var s) => s,
        JsonObject o => o["content"]?.GetValue<string>(),
        _ => null,
    };

    /// <summary>The id of the special token the post-processor's single-sequence template starts with (Llama 3 adds BOS there), or null.</summary>
    private static int? TemplateBos(JsonObject root)
    {
        var template = Flatten(root["post_processor"], "processors").FirstOrDefault(p => p["type"]?.GetValue<string>() == "TemplateProcessing");
        var first = (template?["single"] as JsonArray)?.FirstOrDefault()?["SpecialToken"]?["id"]?.GetValue<string>();
        return first is null ? null : (template!["special_tokens"]?[first]?["ids"] as JsonArray)?.FirstOrDefault()?.GetValue<int>();
    }

    private static IEnumerable<JsonObject> Flatten(JsonNode? node, string listKey = "pretokenizers")
    {
        if (node is not JsonObject o)
        {
            yield break;
        }

        if (o["type"]?.GetValue<string>() == "Sequence" && o[listKey] is JsonArray items)
        {
            foreach (var child in items.SelectMany(i => Flatten(i, listKey)))
            {
                yield return child;
            }
        }
        else
        {
            yield return o;
        }
    }

    private static JsonObject? ReadObject(string path)
    {
        if (!File.Exists(path))
        {
            return null;
        }

        try
        {
            return JsonNode.Parse(File.ReadAllText(path)) as JsonObject ?? throw new InvalidDataException($"'{path}' does not hold a JSON object.");
        }
        catch (JsonException ex)
        {
            throw new InvalidDataException($"'{path}' is not valid JSON: {ex.Message}", ex);
        }
    }
}
