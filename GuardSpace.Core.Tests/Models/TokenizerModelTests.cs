using System.Text.Json.Nodes;
using GuardSpace.Tests.TestUtilities;

namespace GuardSpace.Tests.Models;

/// <summary>The BPE model of a tokenizer.json: merge order, ignore_merges, byte fallback, unknown tokens and both merge formats.</summary>
public sealed class TokenizerModelTests : IDisposable
{
    private readonly TempDirectory _directory = TempDirectory.Create("guardspace-tokbpe-");

    [Fact]
    public void RepeatedCharactersMergeLowestRankFirstThenLeftmost()
    {
        var builder = new TokenizerJsonBuilder("=", "==", "===", "====") { Merges = ["= =", "== =", "== =="] };
        var tokenizer = builder.Load(_directory);
        Assert.Equal(["==", "==="], tokenizer.Tokens("====="));
        Assert.Equal(["===="], tokenizer.Tokens("===="));         // "== =" is queued first but stale once both halves are "=="
        Assert.Equal(["==="], tokenizer.Tokens("==="));
    }

    [Fact]
    public void IgnoreMergesEncodesAVocabularyWordAsOneToken()
    {
        var builder = new TokenizerJsonBuilder("a", "b", "c", "bc", "abc") { Merges = ["b c"] };
        Assert.Equal(["a", "bc"], builder.Load(_directory).Tokens("abc"));
        builder.ModelOptions["ignore_merges"] = true;
        var tokenizer = builder.Load(_directory);
        Assert.Equal(["abc"], tokenizer.Tokens("abc"));
        Assert.Equal(["b", "bc"], tokenizer.Tokens("bbc"));       // not in the vocabulary: merged as usual
    }

    [Fact]
    public void MergesAreReadAsStringsAndAsPairs()
    {
        var strings = new TokenizerJsonBuilder("a", "b", "c", "ab", "abc") { Merges = ["a b", "ab c"] };
        var pairs = new TokenizerJsonBuilder("a", "b", "c", "ab", "abc") { Merges = [new JsonArray("a", "b"), new JsonArray("ab", "c")] };
        Assert.Equal(["abc"], strings.Load(_directory).Tokens("abc"));
        Assert.Equal(["abc"], pairs.Load(_directory).Tokens("abc"));
    }

    [Fact]
    public void ByteFallbackWritesUtf8BytesAndUnknownsFuse()
    {
        var builder = new TokenizerJsonBuilder("<unk>", "a", "<0xC3>", "<0xA9>");
        builder.ModelOptions["unk_token"] = "<unk>";
        builder.ModelOptions["byte_fallback"] = true;
        var tokenizer = builder.Load(_directory);
        Assert.Equal(["a", "<0xC3>", "<0xA9>"], tokenizer.Tokens("aé"));
        Assert.Equal(["<unk>", "a"], tokenizer.Tokens("ÿa"));     // ÿ is C3 BF and <0xBF> is missing: the whole character is unknown

        builder.ModelOptions["byte_fallback"] = false;
        Assert.Equal(["<unk>", "<unk>", "a"], builder.Load(_directory).Tokens("ééa"));
        builder.ModelOptions["fuse_unk"] = true;
        Assert.Equal(["<unk>", "a"], builder.Load(_directory).Tokens("ééa"));
    }

    [Fact]
    public void MalformedModelsAreRefusedWithTheField()
    {
        var outOfVocabulary = new TokenizerJsonBuilder("a", "b") { Merges = ["a b"] };
        var error = Assert.Throws<InvalidDataException>(() => outOfVocabulary.Load(_directory));
        Assert.Contains("model.merges[0]", error.Message);
        Assert.Contains("'ab'", error.Message);

        var badMerge = new TokenizerJsonBuilder("a", "b", "ab") { Merges = ["ab"] };
        Assert.Contains("model.merges[0]", Assert.Throws<InvalidDataException>(() => badMerge.Load(_directory)).Message);

        var unknownPiece = new TokenizerJsonBuilder("a") { PreTokenizer = TokenizerJsonBuilder.Node("BertPreTokenizer") };
        var unsupported = Assert.Throws<NotSupportedException>(() => unknownPiece.Load(_directory));
        Assert.Contains("pre_tokenizer", unsupported.Message);
        Assert.Contains("BertPreTokenizer", unsupported.Message);

        File.WriteAllText(Path.Combine(_directory, "tokenizer.json"), "{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0, \"a\": 1}, \"merges\": []}}");
        var repeated = Assert.Throws<InvalidDataException>(() => GuardSpace.Models.Tokenization.TokenizerPipeline.Load(Path.Combine(_directory, "tokenizer.json"))).Message;
        Assert.Contains("tokenizer.json' is not valid JSON", repeated);
        Assert.Contains("'a'", repeated);

        File.WriteAllText(Path.Combine(_directory, "tokenizer.json"), "{\"model\": ");
        Assert.Contains("not valid JSON", Assert.Throws<InvalidDataException>(() => GuardSpace.Models.Tokenization.TokenizerPipeline.Load(Path.Combine(_directory, "tokenizer.json"))).Message);
    }

    public void Dispose() => _directory.Dispose();
}
