using System.Text.Json.Nodes;
using GuardSpace.Tests.TestUtilities;
using static GuardSpace.Tests.Models.TokenizerJsonBuilder;

namespace GuardSpace.Tests.Models;

/// <summary>Decoders and the post-processor template of a tokenizer.json.</summary>
public sealed class TokenizerDecodeTests : IDisposable
{
    private readonly TempDirectory _directory = TempDirectory.Create("guardspace-tokdec-");

    [Fact]
    public void SentencePieceStyleDecoderJoinsBytesAndStripsTheDummyPrefix()
    {
        var builder = new TokenizerJsonBuilder("▁a", "▁b", "<0xC3>", "<0xA9>", "<0xFF>")
        {
            Decoder = Node("Sequence", ("decoders", new JsonArray(
                Node("Replace", ("pattern", Pattern("▁")), ("content", " ")),
                Node("ByteFallback"),
                Node("Fuse"),
                Node("Strip", ("content", " "), ("start", 1), ("stop", 0))))),
        };
        builder.Add("<s>");
        var tokenizer = builder.Load(_directory);
        Assert.Equal("aé b", tokenizer.Decode("▁a", "<0xC3>", "<0xA9>", "▁b"));
        Assert.Equal("<s> a", tokenizer.Decode("<s>", "▁a"));                   // only the first token loses its space
        Assert.Equal("\uFFFD\uFFFD", tokenizer.Decode("<0xFF>", "<0xC3>"));     // invalid UTF-8: one U+FFFD per byte
    }

    [Fact]
    public void ByteLevelAndMetaspaceDecoders()
    {
        var byteLevel = new TokenizerJsonBuilder("Ġhi", "Ã", "©") { Decoder = Node("ByteLevel") };
        Assert.Equal(" hié", byteLevel.Load(_directory).Decode("Ġhi", "Ã", "©"));

        var metaspace = new TokenizerJsonBuilder("▁hi", "▁there") { Decoder = Node("Metaspace", ("replacement", "▁"), ("prepend_scheme", "always")) };
        Assert.Equal("hi there", metaspace.Load(_directory).Decode("▁hi", "▁there"));
    }

    [Fact]
    public void TemplateProcessingAddsSpecialTokensAroundTheText()
    {
        var builder = new TokenizerJsonBuilder("a");
        var bos = builder.Add("<bos>");
        var eos = builder.Add("<eos>");
        JsonObject Special(string name) => new() { ["SpecialToken"] = new JsonObject { ["id"] = name, ["type_id"] = 0 } };
        JsonObject Entry(string name, int id) => new() { ["id"] = name, ["ids"] = new JsonArray(id), ["tokens"] = new JsonArray(name) };
        builder.PostProcessor = Node("Sequence", ("processors", new JsonArray(
            Node("ByteLevel"),
            Node("TemplateProcessing",
                ("single", new JsonArray(Special("<bos>"), new JsonObject { ["Sequence"] = new JsonObject { ["id"] = "A", ["type_id"] = 0 } }, Special("<eos>"))),
                ("special_tokens", new JsonObject { ["<bos>"] = Entry("<bos>", bos), ["<eos>"] = Entry("<eos>", eos) })))));
        var tokenizer = builder.Load(_directory);
        Assert.Equal(["<bos>", "a", "a", "<eos>"], tokenizer.Tokens("aa", addSpecialTokens: true));
        Assert.Equal(["a", "a"], tokenizer.Tokens("aa"));
        Assert.Equal([bos], tokenizer.Pipeline.TemplatePrefix);
    }

    public void Dispose() => _directory.Dispose();
}
