using GuardSpace.Models.Llama;
using TorchSharp;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace GuardSpace.Tests.Models;

/// <summary>The decoder built in code with random weights trains from scratch on batched, right-padded inputs.</summary>
public class LlamaTrainingTests
{
    [Fact]
    public void RandomlyInitialisedModelLearnsASequenceTaskFromScratch()
    {
        using var scope = NewDisposeScope();
        var config = new LlamaConfig { VocabSize = 24, HiddenSize = 64, IntermediateSize = 128, NumHiddenLayers = 2, NumAttentionHeads = 4, NumKeyValueHeads = 2, MaxPositionEmbeddings = 32 };
        using var model = new LlamaForCausalLM(config, seed: 1);
        Assert.All(model.parameters(), p => Assert.True(p.requires_grad));
        using var optimizer = optim.AdamW(model.parameters(), 3e-3);
        var generator = new Generator(7);

        // Next token = previous + 1 (mod 20); sequences of 6 to 12 tokens, right-padded with id 23 and masked.
        (Tensor Ids, Tensor Mask, Tensor Labels) Batch()
        {
            var lengths = randint(6, 13, [16], generator: generator);
            var starts = randint(0, 20, [16, 1], generator: generator);
            var ids = (starts + arange(12).unsqueeze(0)).remainder(20);
            var mask = arange(12).unsqueeze(0).lt(lengths.unsqueeze(1));
            ids = ids.masked_fill(mask.logical_not(), 23);
            var labels = ids.roll(-1, 1).masked_fill(mask.roll(-1, 1).logical_not(), -100);
            labels[.., -1] = tensor(-100L);
            return (ids, mask.to_type(ScalarType.Int64), labels);
        }

        double Loss(bool train)
        {
            using var step = NewDisposeScope();
            var (ids, mask, labels) = Batch();
            var logits = model.Forward(ids, mask);
            var loss = functional.cross_entropy(logits.reshape(-1, config.VocabSize), labels.reshape(-1), ignore_index: -100);
            if (train)
            {
                optimizer.zero_grad();
                loss.backward();
                optimizer.step();
            }

            return loss.item<float>();
        }

        var before = Loss(train: false);
        for (var i = 0; i < 80; i++)
        {
            Loss(train: true);
        }

        var after = Loss(train: false);
        Assert.True(before > 2.5, $"an untrained model is near uniform over 24 tokens: {before:F3}");
        Assert.True(after < 0.3, $"loss {before:F3} -> {after:F3}");
    }
}
