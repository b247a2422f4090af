using System.Text.Json.Nodes;
using GuardSpace.Tests.TestUtilities;
using static GuardSpace.Tests.Models.TokenizerJsonBuilder;

namespace GuardSpace.Tests.Models;

/// <summary>Normalizers and pre-tokenizers of a tokenizer.json (Split behaviours, Metaspace, ByteLevel, regexes over characters outside the BMP).</summary>
public sealed class TokenizerPreTokenizerTests : IDisposable
{
    private readonly TempDirectory _directory = TempDirectory.Create("guardspace-tokpre-");

    /// <summary>A vocabulary holding every substring of <paramref name="text"/> with ignore_merges, so each pre-tokenized piece comes out as one token.</summary>
    private static TokenizerJsonBuilder Pieces(string text, params string[] more)
    {
        var chars = text.EnumerateRunes().Select(r => r.ToString()).ToArray();
        var substrings = Enumerable.Range(0, chars.Length).SelectMany(i => Enumerable.Range(1, chars.Length - i).Select(n => string.Concat(chars.Skip(i).Take(n))));
        var builder = new TokenizerJsonBuilder(substrings.Concat(more).OrderBy(s => s.Length));
        builder.ModelOptions["ignore_merges"] = true;
        return builder;
    }

    [Theory]
    [InlineData("Removed", false, "a|b|c")]
    [InlineData("Isolated", false, "a|-|b|-|-|c")]
    [InlineData("MergedWithPrevious", false, "a-|b-|-|c")]
    [InlineData("MergedWithNext", false, "a|-b|-|-c")]
    [InlineData("Contiguous", false, "a|-|b|--|c")]
    [InlineData("Removed", true, "-|-|-")]
    public void SplitBehavioursCutAsDescribed(string behavior, bool invert, string expected)
    {
        var builder = Pieces("a-b--c");
        builder.PreTokenizer = Node("Split", ("pattern", Pattern("-")), ("behavior", behavior), ("invert", invert));
        Assert.Equal(expected.Split('|'), builder.Load(_directory).Tokens("a-b--c"));
    }

    [Fact]
    public void RegexesSeeCharactersOutsideTheBmpAsOneCharacter()
    {
        // Llama 3's letter rule: one optional non-letter, then letters. An emoji or a mathematical letter is one character.
        const string text = "😀ab 𝐀b";
        var builder = Pieces(text);
        builder.PreTokenizer = Node("Split", ("pattern", Pattern(@"[^\r\n\p{L}\p{N}]?\p{L}+|\s+", regex: true)), ("behavior", "Isolated"), ("invert", false));
        Assert.Equal(["😀ab", " 𝐀b"], builder.Load(_directory).Tokens(text));
    }

    [Fact]
    public void MetaspaceReplacesSpacesPrependsAndSplits()
    {
        var builder = Pieces("▁hi▁there", "<s>");
        builder.Add("<s>");
        JsonObject Metaspace(string scheme, bool split) => Node("Metaspace", ("replacement", "▁"), ("prepend_scheme", scheme), ("split", split));

        builder.PreTokenizer = Metaspace("always", split: true);
        Assert.Equal(["▁hi", "▁there"], builder.Load(_directory).Tokens("hi there"));
        Assert.Equal(["<s>", "▁hi", "▁there"], builder.Load(_directory).Tokens("<s>hi there"));

        builder.PreTokenizer = Metaspace("first", split: true);
        Assert.Equal(["▁hi", "▁there"], builder.Load(_directory).Tokens("hi there"));
        Assert.Equal(["<s>", "hi", "▁there"], builder.Load(_directory).Tokens("<s>hi there"));   // not at the start of the input

        builder.PreTokenizer = Metaspace("never", split: false);
        Assert.Equal(["hi▁there"], builder.Load(_directory).Tokens("hi there"));
    }

    [Fact]
    public void ByteLevelMapsBytesAddsThePrefixSpaceAndSplitsLikeGpt2()
    {
        var builder = Pieces("Ġhi", "Ġyou", "'s", "ĠÃ©");
        builder.PreTokenizer = Node("ByteLevel", ("add_prefix_space", true), ("use_regex", true));
        var tokenizer = builder.Load(_directory);
        Assert.Equal(["Ġhi", "Ġyou", "'s"], tokenizer.Tokens("hi you's"));
        Assert.Equal(["ĠÃ©"], tokenizer.Tokens("é"));              // é is bytes C3 A9, written as Ã and ©
    }

    [Fact]
    public void NormalizersRunInSequence()
    {
        var builder = Pieces("ab▁c");
        builder.Normalizer = Node("Sequence", ("normalizers", new JsonArray(
            Node("NFKC"),
            Node("Lowercase"),
            Node("Strip", ("strip_left", true), ("strip_right", true)),
            Node("Replace", ("pattern", Pattern(@"\s+", regex: true)), ("content", "▁")))));
        Assert.Equal(["ab▁c"], builder.Load(_directory).Tokens("  ＡＢ \t C  "));   // full-width letters, case, edges, runs of whitespace
    }

    public void Dispose() => _directory.Dispose();
}
