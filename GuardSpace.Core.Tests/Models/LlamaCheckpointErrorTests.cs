using GuardSpace.Models.Llama;
using GuardSpace.Serialization;
using GuardSpace.Storage;
using TorchSharp;
using static TorchSharp.torch;

namespace GuardSpace.Tests.Models;

/// <summary>Bad checkpoint folders fail with errors that name the file, the tensor and what to do.</summary>
public class LlamaCheckpointErrorTests
{
    [Fact]
    public void MissingConfigNamesConfigJson()
    {
        using var checkpoint = TinyCheckpoint.Write(new TinyCheckpoint.Spec(), ScalarType.Float32, 1);
        File.Delete(Path.Combine(checkpoint.Directory, "config.json"));
        var error = Assert.Throws<FileNotFoundException>(() => LlamaForCausalLM.FromPretrained(checkpoint.Directory));
        Assert.Contains(Path.Combine(checkpoint.Directory, "config.json"), error.Message);
    }

    [Fact]
    public void UnknownArchitectureIsNamed()
    {
        using var checkpoint = TinyCheckpoint.Write(new TinyCheckpoint.Spec(), ScalarType.Float32, 1);
        TinyCheckpoint.WriteConfig(checkpoint.Directory, checkpoint.Shape, ScalarType.Float32, architecture: "GPT2LMHeadModel");
        var error = Assert.Throws<NotSupportedException>(() => LlamaForCausalLM.FromPretrained(checkpoint.Directory));
        Assert.Contains("GPT2LMHeadModel", error.Message);
        Assert.Contains("config.json", error.Message);
        Assert.Contains("LlamaForCausalLM", error.Message);
    }

    [Fact]
    public void MissingShardNamesTheShardTheIndexAndATensor()
    {
        using var checkpoint = TinyCheckpoint.Write(new TinyCheckpoint.Spec(), ScalarType.Float32, 3);
        File.Delete(Path.Combine(checkpoint.Directory, "model-00002-of-00003.safetensors"));
        var error = Assert.Throws<FileNotFoundException>(() => LlamaForCausalLM.FromPretrained(checkpoint.Directory));
        Assert.Contains("model-00002-of-00003.safetensors", error.Message);
        Assert.Contains("model.safetensors.index.json", error.Message);
        Assert.Matches(@"maps '(model|lm_head)\.[^']+'", error.Message);
    }

    [Fact]
    public void MissingTensorIsNamed()
    {
        using var checkpoint = TinyCheckpoint.Write(new TinyCheckpoint.Spec(), ScalarType.Float32, 1);
        RewriteWeights(checkpoint, tensors => tensors.Remove("model.layers.1.mlp.up_proj.weight"));
        var error = Assert.Throws<InvalidDataException>(() => LlamaForCausalLM.FromPretrained(checkpoint.Directory));
        Assert.Contains("'model.layers.1.mlp.up_proj.weight' is missing", error.Message);
        Assert.Contains("model.safetensors", error.Message);
    }

    [Fact]
    public void ShapeMismatchWithConfigNamesFileTensorShapesAndFields()
    {
        using var checkpoint = TinyCheckpoint.Write(new TinyCheckpoint.Spec(), ScalarType.Float32, 2);
        TinyCheckpoint.WriteConfig(checkpoint.Directory, checkpoint.Shape, ScalarType.Float32, kvHeads: 4);
        var error = Assert.Throws<InvalidDataException>(() => LlamaForCausalLM.FromPretrained(checkpoint.Directory));
        Assert.Matches(@"'model-0000[12]-of-00002\.safetensors': tensor 'model\.layers\.0\.self_attn\.k_proj\.weight' has shape \[16, 32\], but config\.json implies \[32, 32\] \(num_key_value_heads = 4", error.Message);
        Assert.Contains("model.layers.1.self_attn.v_proj.weight", error.Message);
    }

    [Fact]
    public void TensorsBeyondTheConfigAreReported()
    {
        using var checkpoint = TinyCheckpoint.Write(new TinyCheckpoint.Spec(), ScalarType.Float32, 1);
        TinyCheckpoint.WriteConfig(checkpoint.Directory, checkpoint.Shape with { Layers = 1 }, ScalarType.Float32);
        var error = Assert.Throws<InvalidDataException>(() => LlamaForCausalLM.FromPretrained(checkpoint.Directory));
        Assert.Contains("tensor 'model.layers.1.self_attn.q_proj.weight' has no place", error.Message);
        Assert.Contains("num_hidden_layers = 1", error.Message);
    }

    [Fact]
    public void PickleOnlyFolderAsksForSafetensors()
    {
        using var checkpoint = TinyCheckpoint.Write(new TinyCheckpoint.Spec(), ScalarType.Float32, 1);
        File.Move(Path.Combine(checkpoint.Directory, "model.safetensors"), Path.Combine(checkpoint.Directory, "pytorch_model.bin"));
        var error = Assert.Throws<FileNotFoundException>(() => LlamaForCausalLM.FromPretrained(checkpoint.Directory));
        Assert.Contains("pytorch_model.bin", error.Message);
        Assert.Contains("safetensors", error.Message);
    }

    [Fact]
    public void TruncatedShardIsNamed()
    {
        using var checkpoint = TinyCheckpoint.Write(new TinyCheckpoint.Spec(), ScalarType.Float32, 2);
        var shard = Path.Combine(checkpoint.Directory, "model-00001-of-00002.safetensors");
        var bytes = File.ReadAllBytes(shard);
        File.WriteAllBytes(shard, bytes[..(bytes.Length - 100)]);
        var error = Assert.Throws<InvalidDataException>(() => LlamaForCausalLM.FromPretrained(checkpoint.Directory));
        Assert.Contains(shard, error.Message);
    }

    private static void RewriteWeights(TinyCheckpoint checkpoint, Action<Dictionary<string, Tensor>> change)
    {
        var path = Path.Combine(checkpoint.Directory, "model.safetensors");
        var (tensors, _) = SafetensorsReader.ReadAll(path);
        change(tensors);
        SafetensorsWriter.Write(path, tensors);
        foreach (var t in tensors.Values)
        {
            t.Dispose();
        }
    }
}
