using System.Text.Json.Nodes;
using GuardSpace.Models.Checkpoints;
using GuardSpace.Storage;
using GuardSpace.Models.Export;
using GuardSpace.Models.Llama;
using GuardSpace.Models.Tokenization;
using GuardSpace.Serialization;
using GuardSpace.Tests.TestUtilities;
using TorchSharp;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace GuardSpace.Tests.Models;

/// <summary>
/// A GuardSpace fine-tune written with its adapters merged as a Hugging Face folder: it reloads (through the loader and
/// through the independent float64 reference) to the fine-tuned logits, shards with an index, copies the tokenizer
/// files, appears whole or not at all, and leaves the model in memory as it was.
/// </summary>
public class MergedExportTests
{
    private static readonly long[] Ids = [3, 17, 0, 36, 8, 8, 21, 30, 2];

    [Fact]
    public void MergedShardedCheckpointReloadsToTheFineTunedLogits()
    {
        using var scope = NewDisposeScope();
        using var checkpoint = TinyCheckpoint.Write(new TinyCheckpoint.Spec(), ScalarType.Float32, 1);
        File.WriteAllText(Path.Combine(checkpoint.Directory, "tokenizer.json"), """{"model": {"type": "a tokenizer of this test"}}""");
        File.WriteAllText(Path.Combine(checkpoint.Directory, "tokenizer_config.json"), """{"bos_token": "<first>"}""");
        using var model = LlamaForCausalLM.FromPretrained(checkpoint.Directory, ScalarType.Float32);
        using var guarded = FineTune(model);
        var fineTuned = Logits(model);
        using var parent = TempDirectory.Create("guardspace-merged-");
        var target = Path.Combine(parent, "merged");

        MergedCheckpointWriter.Write(model, target, new MergedExportOptions
        {
            Merge = guarded.Merge,
            Unmerge = guarded.Unmerge,
            SourceDirectory = checkpoint.Directory,
            MaxShardBytes = 16 * 1024,
        });

        var shards = Directory.GetFiles(target, "model-*-of-*.safetensors").Select(Path.GetFileName).Order(StringComparer.Ordinal).ToList();
        Assert.True(shards.Count > 1, $"{shards.Count} shard(s)");
        Assert.Equal(Enumerable.Range(1, shards.Count).Select(i => $"model-{i:D5}-of-{shards.Count:D5}.safetensors"), shards);
        Assert.False(File.Exists(Path.Combine(target, "model.safetensors")));
        Assert.Equal(File.ReadAllText(Path.Combine(checkpoint.Directory, "tokenizer.json")), File.ReadAllText(Path.Combine(target, "tokenizer.json")));
        Assert.Equal(File.ReadAllText(Path.Combine(checkpoint.Directory, "tokenizer_config.json")), File.ReadAllText(Path.Combine(target, "tokenizer_config.json")));
        Assert.Equal([target], Directory.GetFileSystemEntries(parent));   // no temporary folder left beside it

        // The index: every tensor Hugging Face expects, each in the shard that holds it, and the total size.
        var index = (JsonObject)JsonNode.Parse(File.ReadAllText(Path.Combine(target, "model.safetensors.index.json")))!;
        var weightMap = index["weight_map"]!.AsObject().ToDictionary(kv => kv.Key, kv => kv.Value!.GetValue<string>(), StringComparer.Ordinal);
        var weights = new Dictionary<string, Tensor>(StringComparer.Ordinal);
        foreach (var shard in shards)
        {
            var (tensors, _) = SafetensorsReader.ReadAll(Path.Combine(target, shard!));
            foreach (var (name, t) in tensors)
            {
                Assert.Equal(shard, weightMap[name]);
                weights[name] = t.to_type(ScalarType.Float64);
            }
        }

        Assert.Equal(checkpoint.Weights.Keys.Order(StringComparer.Ordinal), weights.Keys.Order(StringComparer.Ordinal));
        Assert.Equal(weightMap.Keys.Order(StringComparer.Ordinal), weights.Keys.Order(StringComparer.Ordinal));
        Assert.Equal(weights.Values.Sum(t => t.NumberOfElements * 4), index["metadata"]!["total_size"]!.GetValue<long>());

        var byReference = LlamaReference.Logits(weights, checkpoint.Shape, Ids);
        Assert.True(Oracle.RelativeError(byReference, fineTuned) <= 1e-5, $"reference on the export: {Oracle.RelativeError(byReference, fineTuned):G3}");
        using var reloaded = HfCheckpoint.Load(target, ScalarType.Float64);
        var byLoader = Logits(reloaded);
        Assert.True(Oracle.RelativeError(byLoader, fineTuned) <= 1e-5, $"loader on the export: {Oracle.RelativeError(byLoader, fineTuned):G3}");
        var original = LlamaReference.Logits(checkpoint.Weights, checkpoint.Shape, Ids);
        Assert.True(Oracle.RelativeError(original, fineTuned) > 1e-3, "the fine-tune changed the logits");
    }

    [Fact]
    public void TheModelInMemoryIsUnchangedAndUnmergedAfterTheExport()
    {
        using var scope = NewDisposeScope();
        using var checkpoint = TinyCheckpoint.Write(new TinyCheckpoint.Spec(), ScalarType.Float32, 1);
        using var model = LlamaForCausalLM.FromPretrained(checkpoint.Directory, ScalarType.Float32);
        using var guarded = FineTune(model);
        var before = model.state_dict().ToDictionary(kv => kv.Key, kv => kv.Value.detach().clone(), StringComparer.Ordinal);
        var logitsBefore = Logits(model);
        using var parent = TempDirectory.Create("guardspace-merged-");

        MergedCheckpointWriter.Write(model, Path.Combine(parent, "out"), new MergedExportOptions { Merge = guarded.Merge, Unmerge = guarded.Unmerge, Dtype = ScalarType.BFloat16 });

        Assert.False(guarded.IsMerged);
        var after = model.state_dict();
        Assert.Equal(before.Keys.Order(StringComparer.Ordinal), after.Keys.Order(StringComparer.Ordinal));
        foreach (var (name, value) in before)
        {
            var change = (after[name].to_type(ScalarType.Float64) - value.to_type(ScalarType.Float64)).abs().max().item<double>();
            Assert.True(change <= 1e-6 * Math.Max(1, value.abs().max().item<float>()), $"'{name}' changed by {change:G3}");
        }

        Assert.True(Oracle.RelativeError(Logits(model), logitsBefore) <= 1e-6);
        var config = JsonNode.Parse(File.ReadAllText(Path.Combine(parent, "out", "config.json")))!;
        Assert.Equal("bfloat16", config["torch_dtype"]!.GetValue<string>());
        using var reader = SafetensorsReader.Open(Path.Combine(parent, "out", "model.safetensors"));
        Assert.All(reader.Entries.Values, e => Assert.Equal("BF16", e.Dtype));
        Assert.False(File.Exists(Path.Combine(parent, "out", "model.safetensors.index.json")));
    }

    [Fact]
    public void AFailedExportLeavesNoFolderAndAnExistingOneIsReplacedOnlyWhenAsked()
    {
        using var scope = NewDisposeScope();
        using var model = new LlamaForCausalLM(new LlamaConfig { VocabSize = 11, HiddenSize = 8, IntermediateSize = 12, NumHiddenLayers = 1, NumAttentionHeads = 2 });
        using var parent = TempDirectory.Create("guardspace-merged-");
        var target = Path.Combine(parent, "out");
        var unmerged = false;

        Assert.Throws<InvalidOperationException>(() => MergedCheckpointWriter.Write(model, target, new MergedExportOptions
        {
            Merge = () => throw new InvalidOperationException("merge fails"),
            Unmerge = () => unmerged = true,
        }));
        Assert.Empty(Directory.GetFileSystemEntries(parent));
        Assert.False(unmerged, "nothing was merged, so nothing is unmerged");
        Assert.Throws<ArgumentException>(() => MergedCheckpointWriter.Write(model, target, new MergedExportOptions { Merge = () => { } }));

        Directory.CreateDirectory(target);
        File.WriteAllText(Path.Combine(target, "keep.txt"), "the user's file");
        var refused = Assert.Throws<IOException>(() => MergedCheckpointWriter.Write(model, target));
        Assert.Contains(target, refused.Message);
        Assert.True(File.Exists(Path.Combine(target, "keep.txt")));

        MergedCheckpointWriter.Write(model, target, new MergedExportOptions { Overwrite = true });
        Assert.False(File.Exists(Path.Combine(target, "keep.txt")));
        Assert.True(File.Exists(Path.Combine(target, "model.safetensors")));
        Assert.Equal([target], Directory.GetFileSystemEntries(parent));
    }

    [Theory]
    [InlineData("LlamaForCausalLM", false, false, null)]
    [InlineData("LlamaForCausalLM", true, true, 6)]
    [InlineData("Qwen2ForCausalLM", false, true, null)]
    public void TensorNamesFromTheConfigAreTheModelsStateDict(string architecture, bool bias, bool tied, int? headDim)
    {
        using var scope = NewDisposeScope();
        var config = new LlamaConfig
        {
            Architecture = architecture,
            VocabSize = 13,
            HiddenSize = 8,
            IntermediateSize = 12,
            NumHiddenLayers = 2,
            NumAttentionHeads = 4,
            NumKeyValueHeads = 2,
            HeadDim = headDim,
            AttentionBias = bias,
            MlpBias = bias,
            TieWordEmbeddings = tied,
            QkvBias = architecture == "Qwen2ForCausalLM",
        };
        using var model = new LlamaForCausalLM(config);
        var expected = model.state_dict().OrderBy(kv => kv.Key, StringComparer.Ordinal).Select(kv => $"{kv.Key} [{string.Join(", ", kv.Value.shape)}]");
        var names = LlamaTensorNames.For(config).OrderBy(n => n.Name, StringComparer.Ordinal).Select(n => $"{n.Name} [{string.Join(", ", n.Shape)}]");
        Assert.Equal(expected, names);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void LogitsDumpReadsBackTheModelsLogitsExactly(bool allPositions)
    {
        using var scope = NewDisposeScope();
        using var model = new LlamaForCausalLM(new LlamaConfig { VocabSize = 23, HiddenSize = 16, IntermediateSize = 24, NumHiddenLayers = 2, NumAttentionHeads = 4 }, seed: 9);
        using var directory = TempDirectory.Create("guardspace-logits-");
        var file = Path.Combine(directory, "logits.json");
        (string, IReadOnlyList<int>)[] prompts = [("Bonjour, \"monde\" é\n", [1, 5, 22, 7]), ("x", [3])];

        LogitsDump.Write(model, prompts, file, allPositions);

        var entries = LogitsDump.Read(file);
        Assert.Equal(2, entries.Count);
        using var noGrad = no_grad();
        for (var i = 0; i < prompts.Length; i++)
        {
            var (text, ids) = prompts[i];
            var logits = model.call(tensor(ids.Select(id => (long)id).ToArray()).unsqueeze(0))[0];
            var first = allPositions ? 0 : ids.Count - 1;
            Assert.Equal(text, entries[i].Text);
            Assert.Equal(ids, entries[i].TokenIds);
            Assert.Equal(first, entries[i].FirstPosition);
            Assert.Equal(ids.Count - first, entries[i].Logits.Count);
            for (var row = 0; row < entries[i].Logits.Count; row++)
            {
                Assert.Equal(logits[first + row].data<float>().ToArray(), entries[i].Logits[row]);
            }
        }

        Assert.Empty(Directory.GetFiles(directory, "*.tmp"));
        File.WriteAllText(file, """{"format": "something else"}""");
        Assert.Contains(file, Assert.Throws<InvalidDataException>(() => LogitsDump.Read(file)).Message);
    }

    [Fact]
    public void LogitsDumpTokenizesEachPromptWithTheTokenizer()
    {
        using var scope = NewDisposeScope();
        using var directory = TempDirectory.Create("guardspace-logits-");
        TokenizerFiles.WriteByteLevelBpe(directory);
        var tokenizer = HfTokenizer.Load(directory);
        using var model = new LlamaForCausalLM(new LlamaConfig { VocabSize = 267, HiddenSize = 16, IntermediateSize = 24, NumHiddenLayers = 1, NumAttentionHeads = 2 }, seed: 4);
        var file = Path.Combine(directory, "logits.json");

        LogitsDump.Write(model, tokenizer, ["hello world", "world"], file);

        var entries = LogitsDump.Read(file);
        Assert.Equal([265, 259, 264], entries[0].TokenIds);   // BOS, "hello", " world"
        Assert.Equal(tokenizer.Encode("world"), entries[1].TokenIds);
        using var noGrad = no_grad();
        var last = model.call(tensor(new long[] { 265, 259, 264 }).unsqueeze(0))[0, 2];
        Assert.Equal(last.data<float>().ToArray(), entries[0].Logits[0]);
    }

    private static GuardedModel FineTune(LlamaForCausalLM model)
    {
        var guarded = LlamaGuardSpaceTests.Attach(model, Tokens(2, 6, 11), Tokens(4, 6, 12));
        using var optimizer = guarded.WrapOptimizer(optim.Adam(guarded.TrainableParameters(), 2e-2));
        for (var step = 0; step < 10; step++)
        {
            using var scope = NewDisposeScope();
            optimizer.zero_grad();
            functional.cross_entropy(model.call(Tokens(8, 6, 100 + step)).reshape(-1, 37), Tokens(8, 6, 500 + step).reshape(-1)).backward();
            optimizer.step();
        }

        return guarded;
    }

    private static Tensor Logits(LlamaForCausalLM model)
    {
        using var noGrad = no_grad();
        return model.call(tensor(Ids).unsqueeze(0))[0].to_type(ScalarType.Float64);
    }

    private static Tensor Tokens(int batch, int seq, int seed) =>
        randint(0, 37, [batch, seq], dtype: ScalarType.Int64, generator: new Generator((ulong)seed));
}
