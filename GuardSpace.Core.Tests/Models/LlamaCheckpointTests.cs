using GuardSpace.Models.Llama;
using GuardSpace.Tests.TestUtilities;
using TorchSharp;
using static TorchSharp.torch;

namespace GuardSpace.Tests.Models;

/// <summary>A Hugging Face checkpoint folder written by the test loads into the decoder, whose logits equal an independent float64 forward.</summary>
public class LlamaCheckpointTests
{
    private static readonly long[][] Sequences = [[3, 17, 0, 36, 8, 8, 21], [30, 2, 11, 5, 19]];

    [Theory]
    [InlineData(ScalarType.Float32, 2, false, "LlamaForCausalLM")]
    [InlineData(ScalarType.BFloat16, 3, true, "LlamaForCausalLM")]
    [InlineData(ScalarType.Float16, 1, false, "Qwen2ForCausalLM")]
    public void LoadedCheckpointGivesTheReferenceLogits(ScalarType fileDtype, int shards, bool tied, string architecture)
    {
        using var scope = NewDisposeScope();
        using var checkpoint = TinyCheckpoint.Write(new TinyCheckpoint.Spec { Tied = tied, Architecture = architecture }, fileDtype, shards);
        using var model = LlamaForCausalLM.FromPretrained(checkpoint.Directory, ScalarType.Float64);
        Assert.Equal(tied, model.named_modules().All(m => m.name != "lm_head"));
        using var noGrad = no_grad();
        foreach (var ids in Sequences)
        {
            var expected = LlamaReference.Logits(checkpoint.Weights, checkpoint.Shape, ids);
            var actual = model.call(tensor(ids).unsqueeze(0))[0];
            Assert.True(Oracle.RelativeError(actual, expected) <= 1e-10, $"{fileDtype}/{architecture}: {Oracle.RelativeError(actual, expected):G3}");
        }
    }

    [Fact]
    public void PaddedBatchesGiveEachSequenceItsOwnLogits()
    {
        using var scope = NewDisposeScope();
        using var checkpoint = TinyCheckpoint.Write(new TinyCheckpoint.Spec(), ScalarType.Float32, 2);
        using var model = LlamaForCausalLM.FromPretrained(checkpoint.Directory, ScalarType.Float64);
        using var noGrad = no_grad();
        var (a, b) = (Sequences[0], Sequences[1]);
        var pad = a.Length - b.Length;
        foreach (var left in new[] { false, true })
        {
            long[] padded = left ? [.. Enumerable.Repeat(0L, pad), .. b] : [.. b, .. Enumerable.Repeat(0L, pad)];
            long[] maskB = left ? [.. Enumerable.Repeat(0L, pad), .. b.Select(_ => 1L)] : [.. b.Select(_ => 1L), .. Enumerable.Repeat(0L, pad)];
            var ids = stack([tensor(a), tensor(padded)]);
            var mask = stack([ones(a.Length, dtype: ScalarType.Int64), tensor(maskB)]);
            var logits = model.Forward(ids, mask);
            var realB = logits[1].narrow(0, left ? pad : 0, b.Length);
            Assert.True(Oracle.RelativeError(logits[0], LlamaReference.Logits(checkpoint.Weights, checkpoint.Shape, a)) <= 1e-10);
            Assert.True(Oracle.RelativeError(realB, LlamaReference.Logits(checkpoint.Weights, checkpoint.Shape, b)) <= 1e-10, $"left padding: {left}");
        }
    }

    [Fact]
    public void HalfPrecisionCheckpointLoadsIntoFloat32()
    {
        using var scope = NewDisposeScope();
        using var checkpoint = TinyCheckpoint.Write(new TinyCheckpoint.Spec(), ScalarType.BFloat16, 2);
        using var model = LlamaForCausalLM.FromPretrained(checkpoint.Directory, ScalarType.Float32);
        Assert.All(model.parameters(), p => Assert.Equal(ScalarType.Float32, p.dtype));
        using var noGrad = no_grad();
        var expected = LlamaReference.Logits(checkpoint.Weights, checkpoint.Shape, Sequences[0]);
        var actual = model.call(tensor(Sequences[0]).unsqueeze(0))[0].to_type(ScalarType.Float64);
        Assert.True(Oracle.RelativeError(actual, expected) <= 1e-5, $"{Oracle.RelativeError(actual, expected):G3}");
    }

    [Fact]
    public void SavePretrainedWritesAFolderThatLoadsBackExactly()
    {
        using var scope = NewDisposeScope();
        var config = new LlamaConfig { VocabSize = 29, HiddenSize = 16, IntermediateSize = 24, NumHiddenLayers = 2, NumAttentionHeads = 4, NumKeyValueHeads = 1 };
        using var model = new LlamaForCausalLM(config, ScalarType.Float64, seed: 3);
        var directory = Directory.CreateTempSubdirectory("guardspace-save-").FullName;
        try
        {
            model.SavePretrained(directory, maxShardBytes: 4096);
            Assert.True(File.Exists(Path.Combine(directory, "model.safetensors.index.json")));
            Assert.True(Directory.GetFiles(directory, "model-*-of-*.safetensors").Length > 1);
            using var loaded = LlamaForCausalLM.FromPretrained(directory, ScalarType.Float64);
            Assert.Equal(config.KeyValueHeads, loaded.Config.KeyValueHeads);
            var ids = tensor(Sequences[0].Select(i => i % 29).ToArray()).unsqueeze(0);
            using var noGrad = no_grad();
            Assert.Equal(0.0, (model.call(ids) - loaded.call(ids)).abs().max().item<double>());

            // Saving again in the other layout removes the first one's file, so a loader cannot pick the stale weights.
            model.SavePretrained(directory);
            Assert.True(File.Exists(Path.Combine(directory, "model.safetensors")));
            Assert.False(File.Exists(Path.Combine(directory, "model.safetensors.index.json")));
            model.SavePretrained(directory, maxShardBytes: 4096);
            Assert.False(File.Exists(Path.Combine(directory, "model.safetensors")));
            Assert.True(File.Exists(Path.Combine(directory, "model.safetensors.index.json")));
        }
        finally
        {
            Directory.Delete(directory, recursive: true);
        }
    }

    [Fact]
    public void Llama3RopeScalingKeepsHighDividesLowAndBlendsTheMiddle()
    {
        // original 8192, low factor 1, high factor 4: wavelengths under 2048 kept, over 8192 divided by 8, linear blend in 8192 / wavelength between.
        var scaling = new RopeScaling(RopeScalingType.Llama3, Factor: 8, LowFreqFactor: 1, HighFreqFactor: 4, OriginalMaxPositionEmbeddings: 8192);
        double[] frequencies = [2 * Math.PI / 1000, 2 * Math.PI / 20000, 2 * Math.PI / 4096];
        var scaled = scaling.Apply(frequencies);
        Assert.Equal(frequencies[0], scaled[0], 15);
        Assert.Equal(frequencies[1] / 8, scaled[1], 15);
        var smooth = ((8192.0 / 4096) - 1) / (4 - 1);   // one third of the way from divided to kept
        Assert.Equal(((1 - smooth) * frequencies[2] / 8) + (smooth * frequencies[2]), scaled[2], 15);
    }
}
