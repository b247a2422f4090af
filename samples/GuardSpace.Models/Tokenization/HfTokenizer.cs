using System.Text.Json;
using System.Text.Json.Nodes;
using GuardSpace.Models.Llama;
using Microsoft.ML.Tokenizers;
using GuardSpace.Models.Internal;

namespace GuardSpace.Models.Tokenization;

/// <summary>
/// The tokenizer of a Hugging Face model folder:
/// <list type="bullet">
/// <item><c>tokenizer.json</c> with a BPE model (byte-level: GPT-2, Llama 3, Qwen2/3, GPT-4o style; SentencePiece
/// style: Llama 2, Mistral 7B, Gemma) runs through <see cref="TokenizerPipeline"/>, this library's own implementation
/// of the tokenizer.json semantics, which matches Hugging Face tokenizers id for id (the parity suite
/// <c>.ci/steps/tokenizer-parity.sh</c> checks it);</item>
/// <item>without a tokenizer.json (or with one whose model is not BPE), <c>tokenizer.model</c>, a SentencePiece model,
/// through Microsoft.ML.Tokenizers' <see cref="SentencePieceTokenizer"/>.</item>
/// </list>
/// Not supported, with an error that says so: WordPiece/Unigram/WordLevel <c>tokenizer.json</c> files without a
/// <c>tokenizer.model</c>, Meta's original tiktoken-format <c>tokenizer.model</c>, and components listed in
/// docs/getting-started.md ("Tokenizer kinds") as not implemented. Chat templates are applied elsewhere.
/// </summary>
public sealed class HfTokenizer
{
    /// <summary>The Hugging Face tokenizer file.</summary>
    public const string TokenizerJsonFile = "tokenizer.json";

    /// <summary>The SentencePiece model file.</summary>
    public const string SentencePieceFile = "tokenizer.model";

    /// <summary>The tokenizer settings file (<c>add_bos_token</c>, <c>bos_token</c>, <c>eos_token</c>).</summary>
    public const string TokenizerConfigFile = "tokenizer_config.json";

    private readonly Func<string, IReadOnlyList<int>> _encode;
    private readonly Func<IEnumerable<int>, string> _decode;
    private readonly IReadOnlyList<int> _prefix;

    private HfTokenizer(Func<string, IReadOnlyList<int>> encode, Func<IEnumerable<int>, string> decode, string source, (int? Bos, int? Eos, bool AddBos) special, IReadOnlyList<int>? prefix = null)
    {
        _encode = encode;
        _decode = decode;
        Source = source;
        (BosId, EosId, AddBos) = special;
        _prefix = prefix is { Count: > 0 } ? prefix : BosId is { } bos ? [bos] : [];
    }

    /// <summary>What was loaded, for logs: the file and the kind of model.</summary>
    public string Source { get; }

    /// <summary>The beginning-of-sequence id, if the model has one.</summary>
    public int? BosId { get; }

    /// <summary>The end-of-sequence id generation stops at, if the model has one.</summary>
    public int? EosId { get; }

    /// <summary>True when <see cref="Encode"/> starts every sequence with the special tokens of the tokenizer's template (or <see cref="BosId"/>).</summary>
    public bool AddBos { get; }

    /// <summary>
    /// Token ids of <paramref name="text"/> (special tokens written in the text are recognised), after the template's
    /// leading special tokens (Llama's BOS) when <see cref="AddBos"/> is set and <paramref name="withBos"/> is true.
    /// </summary>
    public IReadOnlyList<int> Encode(string text, bool withBos = true)
    {
        ArgumentNullException.ThrowIfNull(text);
        var ids = _encode(text);
        return withBos && AddBos && _prefix.Count > 0 ? [.. _prefix, .. ids] : ids;
    }

    /// <summary>The text of <paramref name="ids"/> (special tokens included as text).</summary>
    public string Decode(IEnumerable<int> ids) => _decode(ids);

    /// <summary>
    /// Loads the tokenizer of the model folder <paramref name="directory"/> (see the class remarks for what is supported).
    /// BOS/EOS ids come from <paramref name="config"/> when given, else from <c>tokenizer_config.json</c>.
    /// </summary>
    /// <exception cref="FileNotFoundException">The folder has neither tokenizer.json nor tokenizer.model.</exception>
    /// <exception cref="NotSupportedException">The tokenizer kind or one of its components is not implemented.</exception>
    /// <exception cref="InvalidDataException">A tokenizer file is malformed.</exception>
    public static HfTokenizer Load(string directory, LlamaConfig? config = null)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(directory);
        var json = Path.Combine(directory, TokenizerJsonFile);
        var model = Path.Combine(directory, SentencePieceFile);
        var settings = ReadObject(Path.Combine(directory, TokenizerConfigFile));
        if (File.Exists(json))
        {
            try
            {
                return FromPipeline(json, TokenizerPipeline.Load(json), config, settings);
            }
            catch (NotSupportedException) when (File.Exists(model))
            {
                // A tokenizer.json kind not implemented here (Unigram, WordPiece): the SentencePiece model is read instead.
            }
        }

        if (File.Exists(model))
        {
            return FromSentencePiece(model, config, settings);
        }

        throw new FileNotFoundException($"'{directory}' has neither {TokenizerJsonFile} nor {SentencePieceFile}; copy the model's tokenizer files next to config.json.", json);
    }

    private static HfTokenizer FromPipeline(string json, TokenizerPipeline pipeline, LlamaConfig? config, JsonObject? settings)
    {
        int? Lookup(string key) => TokenText(settings?[key]) is { } text ? pipeline.TokenToId(text) : null;
        var templateBos = pipeline.TemplatePrefix.Count > 0 ? pipeline.TemplatePrefix[0] : (int?)null;
        var bos = config?.BosTokenId ?? Lookup("bos_token") ?? templateBos;
        var eos = config is { EosTokenIds.Count: > 0 } ? config.EosTokenIds[0] : Lookup("eos_token");
        var addBos = settings?["add_bos_token"]?.GetValue<bool>() ?? (bos is not null && templateBos == bos);
        return new HfTokenizer(t => pipeline.Encode(t, addSpecialTokens: false), ids => pipeline.Decode(ids), $"{json} (BPE, own tokenizer.json pipeline)", (bos, eos, addBos), pipeline.TemplatePrefix);
    }

    private static HfTokenizer FromSentencePiece(string model, LlamaConfig? config, JsonObject? settings)
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
        // Microsoft.ML.Tokenizers 2.0.1 ends a truncated model (protobuf fields missing) in a NullReferenceException or
        // an index error of its own; both mean a damaged file here (found by the fuzz test).
        catch (Exception ex) when (ex is ArgumentException or InvalidOperationException or Google.Protobuf.InvalidProtocolBufferException
                                   or NotSupportedException or NullReferenceException or IndexOutOfRangeException)
        {
            throw new InvalidDataException($"'{model}' could not be read as a SentencePiece model: {ex.Message}", ex);
        }

        var bos = config?.BosTokenId ?? (tokenizer.BeginningOfSentenceId >= 0 ? tokenizer.BeginningOfSentenceId : null);
        int? eos = config is { EosTokenIds.Count: > 0 } ? config.EosTokenIds[0] : tokenizer.EndOfSentenceId >= 0 ? tokenizer.EndOfSentenceId : null;
        var addBos = settings?["add_bos_token"]?.GetValue<bool>() ?? true;
        return new HfTokenizer(t => tokenizer.EncodeToIds(t), ids => tokenizer.Decode(ids), $"{model} (SentencePiece, Microsoft.ML.Tokenizers)", (bos, eos, addBos));
    }

    /// <summary>A token in tokenizer_config.json is a string or an object with <c>content</c>.</summary>
    private static string? TokenText(JsonNode? node) => node switch
    {
        JsonValue v when v.TryGetValue<string>(out var s) => s,
        JsonObject o => o["content"]?.GetValue<string>(),
        _ => null,
    };

    private static JsonObject? ReadObject(string path)
    {
        if (!File.Exists(path))
        {
            return null;
        }

        return JsonFiles.ReadObject(path);
    }
}
