using System.Text;
using System.Text.Json.Nodes;
using GuardSpace.Models.Tokenization;

namespace GuardSpace.Tests.Models;

/// <summary>Small hand-written tokenizer.json files for the tokenizer pipeline tests: a vocabulary (id = position), merges, added tokens and components.</summary>
internal sealed class TokenizerJsonBuilder
{
    private readonly List<string> _vocab = [];
    private readonly List<AddedToken> _added = [];

    public TokenizerJsonBuilder(params IEnumerable<string> vocab) => Vocab(vocab);

    public JsonArray Merges { get; set; } = [];

    public JsonObject ModelOptions { get; } = [];

    public JsonNode? Normalizer { get; set; }

    public JsonNode? PreTokenizer { get; set; }

    public JsonNode? PostProcessor { get; set; }

    public JsonNode? Decoder { get; set; }

    /// <summary>Adds tokens to the vocabulary (ids follow on), skipping ones already there.</summary>
    public TokenizerJsonBuilder Vocab(IEnumerable<string> tokens)
    {
        _vocab.AddRange(tokens.Where(t => !_vocab.Contains(t)).Distinct());
        return this;
    }

    /// <summary>Adds an added token with the next free id; returns that id.</summary>
    public int Add(string content, bool special = true, bool singleWord = false, bool lstrip = false, bool rstrip = false, bool? normalized = null)
    {
        var id = _vocab.Count + _added.Count + 100;
        _added.Add(new AddedToken(id, content, singleWord, lstrip, rstrip, normalized ?? !special, special));
        return id;
    }

    public int Id(string token) => _vocab.IndexOf(token) is >= 0 and var id ? id : throw new ArgumentException($"'{token}' is not in the test vocabulary");

    /// <summary>A component object: <c>{"type": type, ...fields}</c>.</summary>
    public static JsonObject Node(string type, params (string Key, JsonNode? Value)[] fields)
    {
        var node = new JsonObject { ["type"] = type };
        foreach (var (key, value) in fields)
        {
            node[key] = value;
        }

        return node;
    }

    public static JsonObject Pattern(string text, bool regex = false) => new() { [regex ? "Regex" : "String"] = text };

    public JsonObject ToJson()
    {
        var vocab = new JsonObject();
        for (var i = 0; i < _vocab.Count; i++)
        {
            vocab[_vocab[i]] = i;
        }

        var model = new JsonObject { ["type"] = "BPE", ["vocab"] = vocab, ["merges"] = Merges.DeepClone() };
        foreach (var (key, value) in ModelOptions)
        {
            model[key] = value?.DeepClone();
        }

        return new JsonObject
        {
            ["version"] = "1.0",
            ["added_tokens"] = new JsonArray(_added.Select(t => (JsonNode)new JsonObject
            {
                ["id"] = t.Id,
                ["content"] = t.Content,
                ["single_word"] = t.SingleWord,
                ["lstrip"] = t.LeftStrip,
                ["rstrip"] = t.RightStrip,
                ["normalized"] = t.Normalized,
                ["special"] = t.Special,
            }).ToArray()),
            ["normalizer"] = Normalizer?.DeepClone(),
            ["pre_tokenizer"] = PreTokenizer?.DeepClone(),
            ["post_processor"] = PostProcessor?.DeepClone(),
            ["decoder"] = Decoder?.DeepClone(),
            ["model"] = model,
        };
    }

    /// <summary>Writes tokenizer.json into <paramref name="directory"/> and loads it; returns the pipeline and its file.</summary>
    public Loaded Load(string directory)
    {
        var path = Path.Combine(directory, "tokenizer.json");
        File.WriteAllText(path, ToJson().ToJsonString(), new UTF8Encoding(false));
        return new Loaded(TokenizerPipeline.Load(path), this);
    }

    /// <summary>A loaded pipeline whose output is read back as token strings.</summary>
    internal sealed class Loaded(TokenizerPipeline pipeline, TokenizerJsonBuilder builder)
    {
        public TokenizerPipeline Pipeline { get; } = pipeline;

        public string[] Tokens(string text, bool addSpecialTokens = false) =>
            Pipeline.Encode(text, addSpecialTokens).Select(id => builder._added.FirstOrDefault(t => t.Id == id)?.Content ?? builder._vocab[id]).ToArray();

        public string Decode(params string[] tokens) =>
            Pipeline.Decode(tokens.Select(t => builder._added.FirstOrDefault(a => a.Content == t)?.Id ?? builder.Id(t)));
    }
}
