using GuardSpace.Models.Behaviour;
using GuardSpace.Models.Llama;
using GuardSpace.Models.Tokenization;
using static TorchSharp.torch;

namespace GuardSpace.Tests.Models;

/// <summary>Refusal data from a causal LM's own greedy answers (GuardSpace.Models), on a tiny random checkpoint.</summary>
public sealed class RefusalDataTests : IDisposable
{
    private static readonly string[] Prompts = [.. Enumerable.Range(0, 8).Select(i => $"hello world {i}")];
    private readonly TinyCheckpoint _checkpoint;
    private readonly LlamaForCausalLM _model;
    private readonly HfTokenizer _tokenizer;

    public RefusalDataTests()
    {
        _checkpoint = TinyCheckpoint.Write(new TinyCheckpoint.Spec { Vocab = 267 }, ScalarType.Float64, shards: 1);
        try
        {
            TokenizerFiles.WriteByteLevelBpe(_checkpoint.Directory);
            _model = LlamaForCausalLM.FromPretrained(_checkpoint.Directory, ScalarType.Float64);
            _tokenizer = HfTokenizer.Load(_checkpoint.Directory);
        }
        catch
        {
            // xunit does not dispose a test class whose constructor threw: remove the checkpoint's folder here.
            _checkpoint.Dispose();
            throw;
        }
    }

    [Fact]
    public void PairsHoldTheGreedyAnswerWithLabelsOnTheAnswerOnly()
    {
        var data = RefusalData.FromGreedyAnswers(_model, _tokenizer, Prompts, maxNewTokens: 4);
        Assert.Equal(8, data.PromptCount);
        Assert.Equal(2, data.Validation.Count);
        Assert.Equal(6, data.Training.Count);
        Assert.Empty(data.Training.Select(p => p.Prompt).Intersect(data.Validation.Select(p => p.Prompt)));
        foreach (var pair in data.Training.Concat(data.Validation))
        {
            var promptIds = _tokenizer.Encode(pair.Prompt + "\n");
            var answer = GreedyDecoding.Generate(_model, promptIds, 4, _tokenizer.EosId);
            Assert.Equal(_tokenizer.Decode(answer), pair.Answer);
            // BOS + prompt + separator + answer (+ EOS where the tokenizer has one); the last token is only a label.
            long[] full = [.. promptIds.Concat(answer).Select(i => (long)i), .. _tokenizer.EosId is { } eos ? new long[] { eos } : []];
            Assert.Equal(full[..^1], pair.Ids);
            var labelled = pair.Labels.Select((l, i) => (l, i)).Where(x => x.l != RefusalData.Ignore).ToList();
            Assert.Equal(promptIds.Count - 1, labelled[0].i); // the first answer token is predicted at the prompt's end
            Assert.Equal(full[promptIds.Count..], labelled.Select(x => x.l));
        }
    }

    [Fact]
    public void ValidationLossIsTheAnswerTokenCrossEntropy()
    {
        var data = RefusalData.FromGreedyAnswers(_model, _tokenizer, Prompts, maxNewTokens: 3);
        double total = 0;
        long tokens = 0;
        using (no_grad())
        {
            foreach (var pair in data.Validation)
            {
                using var scope = NewDisposeScope();
                var logp = _model.call(tensor(pair.Ids).unsqueeze(0))[0].log_softmax(-1);
                for (var i = 0; i < pair.Labels.Length; i++)
                {
                    if (pair.Labels[i] != RefusalData.Ignore)
                    {
                        total -= logp[i, pair.Labels[i]].item<double>();
                        tokens++;
                    }
                }
            }
        }

        Assert.Equal(total / tokens, data.ValidationLoss(_model, batchSize: 1), 5); // the helper reduces in float32
        var batch = data.BatchLoss(_model, 3, new Random(1));
        Assert.True(batch.requires_grad);
        Assert.True(double.IsFinite(batch.item<float>()));
    }

    [Fact]
    public void TooFewRefusalsOrNoPromptsAreRefused()
    {
        Assert.Contains("No harmful calibration prompts", Assert.Throws<ArgumentException>(() => RefusalData.FromGreedyAnswers(_model, _tokenizer, [])).Message, StringComparison.Ordinal);
        var judgedOut = Assert.Throws<ArgumentException>(() => RefusalData.FromGreedyAnswers(_model, _tokenizer, Prompts, maxNewTokens: 2, isRefusal: _ => false));
        Assert.Contains("gave 0 refusal(s) to the 8 harmful calibration prompts", judgedOut.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void PromptFeaturesAreTheLastTokensInputOfTheLayer()
    {
        using var scope = NewDisposeScope();
        var layer = PromptFeatures.DefaultLayer(_model.Config);
        Assert.Equal("model.layers.1.mlp.up_proj", layer);
        var features = PromptFeatures.LastToken(_model, _tokenizer, Prompts[..3]);
        Assert.Equal([3L, 32L], features.shape);
        Assert.Equal(ScalarType.Float64, features.dtype);

        // Independent capture: the layer's input for the whole sequence, last row.
        var linear = (TorchSharp.Modules.Linear)_model.named_modules().Single(m => m.name == layer).module;
        for (var i = 0; i < 3; i++)
        {
            Tensor? seen = null;
            var remover = linear.register_forward_hook((_, x, _) => { seen = x.detach().clone().DetachFromDisposeScope(); return null!; });
            using (no_grad())
            {
                _model.call(tensor(_tokenizer.Encode(Prompts[i] + "\n").Select(t => (long)t).ToArray()).unsqueeze(0));
            }

            remover.remove();
            Assert.True(allclose(seen![0, -1], features[i], rtol: 0, atol: 0), $"prompt {i}");
            seen.Dispose();
        }

        var error = Assert.Throws<ArgumentException>(() => PromptFeatures.LastToken(_model, _tokenizer, Prompts, "model.norm"));
        Assert.Contains("'model.norm' is not a Linear layer", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void PromptFeaturesOfEncodedPromptsReadTheGivenIdsAsTheyAre()
    {
        using var scope = NewDisposeScope();

        // Ids as a chat template would give them (no BOS added, no separator): the overload must not re-encode them.
        IReadOnlyList<int>[] ids = [.. Prompts[..3].Select(p => _tokenizer.Encode("User: " + p + "\nAssistant:", withBos: false))];
        var features = PromptFeatures.LastToken(_model, ids);
        var byText = PromptFeatures.LastToken(_model, _tokenizer, [.. Prompts[..3].Select(p => "User: " + p)], separator: "\nAssistant:");
        Assert.Equal([3L, 32L], features.shape);
        Assert.False(allclose(features, byText), "the text overload adds BOS, so the two must differ");
        var withBos = PromptFeatures.LastToken(_model, [.. Prompts[..3].Select(p => _tokenizer.Encode("User: " + p + "\nAssistant:"))]);
        Assert.True(allclose(withBos, byText, rtol: 0, atol: 0));

        var error = Assert.Throws<ArgumentException>(() => PromptFeatures.LastToken(_model, [ids[0], []]));
        Assert.Contains("encodes to no tokens", error.Message, StringComparison.Ordinal);
    }

    public void Dispose()
    {
        _model.Dispose();
        _checkpoint.Dispose();
    }
}
