using GuardSpace.Models.Data;
using GuardSpace.Models.Tokenization;
using GuardSpace.Tests.TestUtilities;

namespace GuardSpace.Tests.Models;

/// <summary>Tokenizers built from model-folder files, and the prompt/training file readers.</summary>
public sealed class TokenizerAndPromptFileTests : IDisposable
{
    private readonly TempDirectory _directory = TempDirectory.Create("guardspace-tok-");

    [Fact]
    public void ByteLevelBpeTokenizerJsonAppliesMergesBytesAndTheBosTemplate()
    {
        TokenizerFiles.WriteByteLevelBpe(_directory);
        var tokenizer = HfTokenizer.Load(_directory);
        Assert.Equal(TokenizerFiles.Bos, tokenizer.BosId);   // from tokenizer_config-less folder: the template and added tokens
        Assert.True(tokenizer.AddBos);
        Assert.Equal([TokenizerFiles.Bos, 259, 264], tokenizer.Encode("hello world"));
        Assert.Equal([259, 264], tokenizer.Encode("hello world", withBos: false));

        // é is two UTF-8 bytes (0xC3 0xA9), each its own byte token; "ll" merges; "o" stays a byte.
        Assert.Equal(['h', 0xC3, 0xA9, 257, 'o'], tokenizer.Encode("héllo", withBos: false));
        Assert.Equal("héllo world", tokenizer.Decode(tokenizer.Encode("héllo world", withBos: false)));
        Assert.Equal([259, TokenizerFiles.Eos], tokenizer.Encode("hello<|end_of_text|>", withBos: false));
    }

    [Fact]
    public void NfcNormalizerIsAppliedAndOthersAreRefused()
    {
        TokenizerFiles.WriteByteLevelBpe(_directory, "NFC");
        var tokenizer = HfTokenizer.Load(_directory);
        Assert.Equal(tokenizer.Encode("h\u00e9llo"), tokenizer.Encode("he\u0301llo"));   // composed and decomposed é
        Assert.Equal(['h', 0xC3, 0xA9, 257, 'o'], tokenizer.Encode("he\u0301llo", withBos: false));

        TokenizerFiles.WriteByteLevelBpe(_directory, "Precompiled");
        var error = Assert.Throws<NotSupportedException>(() => HfTokenizer.Load(_directory));
        Assert.Contains("'Precompiled' normalizer", error.Message);
    }

    [Fact]
    public void SentencePieceModelIsUsedWhenThereIsNoByteLevelTokenizerJson()
    {
        TokenizerFiles.WriteSentencePiece(_directory);
        var tokenizer = HfTokenizer.Load(_directory);
        Assert.Contains("SentencePiece", tokenizer.Source);
        Assert.Equal(1, tokenizer.BosId);
        Assert.Equal(2, tokenizer.EosId);
        Assert.Equal([1, 15], tokenizer.Encode("hello"));            // <s> ▁hello
        Assert.Equal([15, 3, 8, 7, 9, 10], tokenizer.Encode("hello word", withBos: false)); // ▁hello ▁ w o r d
        Assert.Equal("hello word", tokenizer.Decode(tokenizer.Encode("hello word", withBos: false)));
    }

    [Fact]
    public void UnsupportedTokenizerFilesGiveClearErrors()
    {
        var missing = Assert.Throws<FileNotFoundException>(() => HfTokenizer.Load(_directory));
        Assert.Contains("tokenizer.json", missing.Message);
        Assert.Contains("tokenizer.model", missing.Message);

        File.WriteAllText(Path.Combine(_directory, "tokenizer.json"), """{"model": {"type": "WordPiece", "vocab": {}}}""");
        var wordPiece = Assert.Throws<NotSupportedException>(() => HfTokenizer.Load(_directory));
        Assert.Contains("WordPiece", wordPiece.Message);

        File.WriteAllText(Path.Combine(_directory, "tokenizer.model"), "IQ== 0\nIg== 1\n");   // tiktoken text, not protobuf
        var tiktoken = Assert.Throws<NotSupportedException>(() => HfTokenizer.Load(_directory));
        Assert.Contains("tiktoken", tiktoken.Message);
    }

    [Fact]
    public void PromptFilesReadPlainLinesAndJsonLines()
    {
        var plain = Path.Combine(_directory, "prompts.txt");
        File.WriteAllText(plain, "\uFEFFfirst prompt\r\n\r\n  second prompt  \nthird\n");
        Assert.Equal(["first prompt", "second prompt", "third"], PromptFile.ReadPrompts(plain));

        var jsonl = Path.Combine(_directory, "train.jsonl");
        File.WriteAllText(jsonl, "{\"prompt\": \"Add 2 and 3.\", \"response\": \"5\", \"id\": 7}\n\n{\"prompt\": \"Say hi.\"}\n");
        Assert.Equal([new PromptExample("Add 2 and 3.", "5"), new PromptExample("Say hi.", null)], PromptFile.Read(jsonl));

        File.WriteAllText(jsonl, "{\"prompt\": \"ok\"}\n{\"text\": \"no prompt\"}\n");
        var noPrompt = Assert.Throws<InvalidDataException>(() => PromptFile.Read(jsonl));
        Assert.Contains("line 2", noPrompt.Message);
        Assert.Contains("\"prompt\"", noPrompt.Message);

        File.WriteAllText(jsonl, "{\"prompt\": \"ok\"}\n{\"prompt\": \"broken\"\n");
        Assert.Contains("line 2 is not valid JSON", Assert.Throws<InvalidDataException>(() => PromptFile.Read(jsonl)).Message);

        File.WriteAllText(plain, "\n  \n");
        Assert.Contains("holds no prompts", Assert.Throws<InvalidDataException>(() => PromptFile.Read(plain)).Message);
    }

    public void Dispose() => _directory.Dispose();
}
