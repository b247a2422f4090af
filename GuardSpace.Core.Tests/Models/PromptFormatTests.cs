using GuardSpace.Models.Behaviour;
using GuardSpace.Models.Data;
using GuardSpace.Models.Llama;
using GuardSpace.Models.Templates;
using GuardSpace.Models.Tokenization;
using static TorchSharp.torch;

namespace GuardSpace.Tests.Models;

/// <summary>
/// Prompt files that say per line whether the chat template applies, <see cref="PromptFormat"/> (raw or through the
/// template, BOS written once), and refusal data built through a template; on the tests' byte-level BPE tokenizer and a
/// tiny random checkpoint.
/// </summary>
public sealed class PromptFormatTests : IDisposable
{
    private const string Template = "{{ bos_token }}{% for m in messages %}{{ m.role }}: {{ m.content }}\n{% endfor %}{% if add_generation_prompt %}assistant:{% endif %}";
    private readonly TinyCheckpoint _checkpoint;
    private readonly HfTokenizer _tokenizer;
    private readonly ChatTemplate _template;

    public PromptFormatTests()
    {
        _checkpoint = TinyCheckpoint.Write(new TinyCheckpoint.Spec { Vocab = 267 }, ScalarType.Float64, shards: 1);
        try
        {
            TokenizerFiles.WriteByteLevelBpe(_checkpoint.Directory);
            var settings = new System.Text.Json.Nodes.JsonObject { ["chat_template"] = Template, ["bos_token"] = "<|begin_of_text|>", ["eos_token"] = "<|end_of_text|>" };
            File.WriteAllText(Path.Combine(_checkpoint.Directory, ChatTemplate.TokenizerConfigFile), settings.ToJsonString());
            _tokenizer = HfTokenizer.Load(_checkpoint.Directory);
            _template = ChatTemplate.Load(_checkpoint.Directory);
        }
        catch
        {
            _checkpoint.Dispose();
            throw;
        }
    }

    [Fact]
    public void TextLinesMarkedChatOrRawKeepTheirMarkAndUnmarkedLinesStayRaw()
    {
        var path = Path.Combine(_checkpoint.Directory, "prompts.txt");
        File.WriteAllText(path, "[chat] hello world\n[raw] [chat] written as is\nplain line\n  [chat]\ttabbed  \n[chatty] not a mark\n");
        Assert.Equal(
            [
                new PromptExample("hello world", null, Chat: true),
                new PromptExample("[chat] written as is", null),
                new PromptExample("plain line", null),
                new PromptExample("tabbed", null, Chat: true),
                new PromptExample("[chatty] not a mark", null),
            ],
            PromptFile.Read(path));

        File.WriteAllText(path, "fine\n[chat]\n");
        var empty = Assert.Throws<InvalidDataException>(() => PromptFile.Read(path));
        Assert.Contains("line 2: '[chat]' is followed by no prompt", empty.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void JsonLinesCarryAChatFlag()
    {
        var path = Path.Combine(_checkpoint.Directory, "train.jsonl");
        File.WriteAllText(path, "{\"prompt\": \"a\", \"response\": \"b\", \"chat\": true}\n{\"prompt\": \"c\", \"chat\": false}\n{\"prompt\": \"d\", \"chat\": null}\n");
        Assert.Equal([new PromptExample("a", "b", Chat: true), new PromptExample("c", null), new PromptExample("d", null)], PromptFile.Read(path));

        File.WriteAllText(path, "{\"prompt\": \"a\"}\n{\"prompt\": \"c\", \"chat\": \"yes\"}\n");
        var error = Assert.Throws<InvalidDataException>(() => PromptFile.Read(path));
        Assert.Contains("line 2: \"chat\" must be true or false", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void RawPromptsAreBosPromptAndSeparator()
    {
        Assert.Equal(_tokenizer.Encode("hello world\n"), PromptFormat.Raw().EncodePrompt(_tokenizer, "hello world"));
        Assert.Equal(_tokenizer.Encode("hello world => "), PromptFormat.Raw(" => ").EncodePrompt(_tokenizer, "hello world"));
        Assert.Equal("hello world\n", PromptFormat.Raw().PromptText("hello world"));
    }

    [Fact]
    public void ChatPromptsGoThroughTheTemplateWithOneBos()
    {
        var format = PromptFormat.Chat(_template, systemPrompt: "be brief");
        Assert.Equal("<|begin_of_text|>system: be brief\nuser: hello world\nassistant:", format.PromptText("hello world"));
        var ids = format.EncodePrompt(_tokenizer, "hello world");
        Assert.Equal(_tokenizer.Encode(format.PromptText("hello world"), withBos: false), ids);
        Assert.Equal(TokenizerFiles.Bos, ids[0]);
        Assert.Single(ids, id => id == TokenizerFiles.Bos);

        // Per line: an example not marked chat stays raw under a chat format; one marked chat needs a template.
        Assert.Equal(_tokenizer.Encode("hello world\n"), format.EncodePrompt(_tokenizer, new PromptExample("hello world", null)));
        Assert.Equal(ids, format.EncodePrompt(_tokenizer, new PromptExample("hello world", null, Chat: true)));
        var noTemplate = Assert.Throws<InvalidOperationException>(() => PromptFormat.Raw().EncodePrompt(_tokenizer, new PromptExample("x", null, Chat: true)));
        Assert.Contains("no template was given", noTemplate.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void TrainingExamplesSplitWhereTheAnswerStarts()
    {
        Assert.Equal(TokenizerFiles.Eos, _tokenizer.EosId);
        var format = PromptFormat.Chat(_template);
        var (rawPrompt, rawResponse) = format.EncodeExample(_tokenizer, new PromptExample("hello", "world"));
        Assert.Equal(_tokenizer.Encode("hello\n"), rawPrompt);
        Assert.Equal([.. _tokenizer.Encode("world", withBos: false), TokenizerFiles.Eos], rawResponse);

        var (prompt, response) = format.EncodeExample(_tokenizer, new PromptExample("hello", "world", Chat: true));
        Assert.Equal(format.EncodePrompt(_tokenizer, "hello"), prompt);
        Assert.Equal("<|begin_of_text|>user: hello\nassistant: world\n", _tokenizer.Decode([.. prompt, .. response]));
        Assert.Equal(_tokenizer.Encode("<|begin_of_text|>user: hello\nassistant: world\n", withBos: false), [.. prompt, .. response]);

        var (promptOnly, none) = format.EncodeExample(_tokenizer, new PromptExample("hello", null, Chat: true));
        Assert.Equal(prompt, promptOnly);
        Assert.Empty(none);
    }

    [Fact]
    public void RefusalDataBuiltThroughTheTemplateStartsEachPairWithTheRenderedPrompt()
    {
        using var model = LlamaForCausalLM.FromPretrained(_checkpoint.Directory, ScalarType.Float64);
        var format = PromptFormat.Chat(_template);
        string[] prompts = [.. Enumerable.Range(0, 6).Select(i => $"hello world {i}")];
        var data = RefusalData.FromGreedyAnswers(model, _tokenizer, prompts, maxNewTokens: 3, format: format);
        foreach (var pair in data.Training.Concat(data.Validation))
        {
            var promptIds = format.EncodePrompt(_tokenizer, pair.Prompt);
            Assert.Equal(promptIds.Select(i => (long)i), pair.Ids.Take(promptIds.Count));
            Assert.Equal(promptIds.Count - 1, Array.FindIndex(pair.Labels, l => l != RefusalData.Ignore));
            Assert.Equal(_tokenizer.Decode(GreedyDecoding.Generate(model, promptIds, 3, _tokenizer.EosId)), pair.Answer);
        }

        // Scores through the template equal raw scores of the rendered text (its BOS text left to the tokenizer's BOS).
        var chatScores = RefusalData.RefusalScores(model, _tokenizer, prompts, "world", format: format);
        string[] rendered = [.. prompts.Select(p => format.PromptText(p)["<|begin_of_text|>".Length..])];
        Assert.Equal(RefusalData.RefusalScores(model, _tokenizer, rendered, "world", separator: ""), chatScores);
        Assert.NotEqual(RefusalData.RefusalScores(model, _tokenizer, prompts, "world"), chatScores);

        // The refusal rate regenerates from the same rendered prompts: every validation answer comes back.
        var answers = data.Validation.Select(p => p.Answer).ToHashSet();
        Assert.Equal(1.0, data.RefusalRate(model, _tokenizer, answers.Contains, maxNewTokens: 3, format: format));
    }

    public void Dispose() => _checkpoint.Dispose();
}
