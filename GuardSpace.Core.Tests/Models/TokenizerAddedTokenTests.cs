using GuardSpace.Tests.TestUtilities;
using static GuardSpace.Tests.Models.TokenizerJsonBuilder;

namespace GuardSpace.Tests.Models;

/// <summary>Added tokens written in the text, with their single_word, lstrip, rstrip and normalized flags (Hugging Face tokenizers' semantics).</summary>
public sealed class TokenizerAddedTokenTests : IDisposable
{
    private readonly TempDirectory _directory = TempDirectory.Create("guardspace-tokadd-");

    private static TokenizerJsonBuilder Chars(string alphabet = "abcdeghiklmnopsxyz <>/_!é1▁") => new(alphabet.Select(c => c.ToString()));

    [Fact]
    public void SpecialTokensInTheTextAreCutOutLeftmostLongest()
    {
        var builder = Chars();
        builder.Add("<s>");
        builder.Add("</s>");
        builder.Add("<s>x");
        var tokenizer = builder.Load(_directory);
        Assert.Equal(["a", "<s>", "b", "</s>"], tokenizer.Tokens("a<s>b</s>"));
        Assert.Equal(["<s>x", "y"], tokenizer.Tokens("<s>xy"));                // the longer token that starts at the same place wins
        Assert.Equal(["<", "s", " ", ">"], tokenizer.Tokens("<s >"));
    }

    [Fact]
    public void SingleWordTokensMatchOnlyBetweenNonWordCharacters()
    {
        var builder = Chars();
        builder.Add("ok", singleWord: true);
        var tokenizer = builder.Load(_directory);
        Assert.Equal(["ok", " ", "g", "o"], tokenizer.Tokens("ok go"));
        Assert.Equal(["ok", "!"], tokenizer.Tokens("ok!"));
        Assert.Equal(["l", "o", "o", "k"], tokenizer.Tokens("look"));
        Assert.Equal(["o", "k", "_"], tokenizer.Tokens("ok_"));                // '_' is a word character
        Assert.Equal(["é", "o", "k"], tokenizer.Tokens("éok"));               // so is a non-ASCII letter
        Assert.Equal(["1", "o", "k"], tokenizer.Tokens("1ok"));
    }

    [Fact]
    public void LeftAndRightStripTakeTheAdjacentWhitespace()
    {
        var builder = Chars();
        builder.Add("<m>", lstrip: true, rstrip: true);
        builder.Add("<l>", lstrip: true);
        builder.Add("<r>", rstrip: true);
        var tokenizer = builder.Load(_directory);
        Assert.Equal(["a", "<m>", "b"], tokenizer.Tokens("a  <m>  b"));
        Assert.Equal(["a", "<l>", " ", "b"], tokenizer.Tokens("a <l> b"));
        Assert.Equal(["a", " ", "<r>", "b"], tokenizer.Tokens("a <r> b"));
        Assert.Equal(["<l>"], tokenizer.Tokens("   <l>"));
    }

    [Fact]
    public void NormalizedTokensAreMatchedAsTheirNormalizedTextInTheNormalizedInput()
    {
        var builder = Chars();
        builder.Normalizer = Node("Sequence", ("normalizers", new System.Text.Json.Nodes.JsonArray(
            Node("Prepend", ("prepend", "▁")),
            Node("Replace", ("pattern", Pattern(" ")), ("content", "▁")))));
        builder.Add("hi", special: false, normalized: true);      // matched as "▁hi"
        builder.Add("<s>");                                       // not normalized: matched in the text as written
        var tokenizer = builder.Load(_directory);
        Assert.Equal(["▁", "a", "hi"], tokenizer.Tokens("a hi"));
        Assert.Equal(["▁", "a", "h", "i"], tokenizer.Tokens("ahi"));
        Assert.Equal(["<s>", "hi"], tokenizer.Tokens("<s>hi"));                // each piece after a token gets the prefix again
        Assert.Equal("▁ a ▁hi", tokenizer.Pipeline.Decode(tokenizer.Pipeline.Encode("a hi", false)));   // decoded as matched (no decoder: joined by spaces)
    }

    public void Dispose() => _directory.Dispose();
}
