using System.Globalization;
using System.Text;
using GuardSpace.Serialization;
using GuardSpace.Storage;
using GuardSpace.Tests.TestUtilities;
using TorchSharp;
using static TorchSharp.torch;

namespace GuardSpace.Tests.Models;

/// <summary>
/// A tiny Llama-family checkpoint written by the tests in Hugging Face's folder layout, independently of the loader under
/// test: config.json is written as text here, the weights with the core library's safetensors writer, and the tensor
/// names follow Hugging Face's modeling_llama. <see cref="Weights"/> holds the stored values upcast to float64 (after the
/// rounding to the file's dtype), which the reference forward uses.
/// </summary>
internal sealed class TinyCheckpoint : IDisposable
{
    private TinyCheckpoint(string directory, Dictionary<string, Tensor> weights, Spec spec)
    {
        Directory = directory;
        Weights = weights;
        Shape = spec;
    }

    public string Directory { get; }

    public Dictionary<string, Tensor> Weights { get; }

    public Spec Shape { get; }

    /// <summary>The sizes of the checkpoint; defaults are a GQA model (4 query heads, 2 key/value heads).</summary>
    public sealed record Spec
    {
        public string Architecture { get; init; } = "LlamaForCausalLM";

        public int Vocab { get; init; } = 37;

        public int Hidden { get; init; } = 32;

        public int Intermediate { get; init; } = 48;

        public int Layers { get; init; } = 2;

        public int Heads { get; init; } = 4;

        public int KvHeads { get; init; } = 2;

        public double Theta { get; init; } = 500.0;

        public double Eps { get; init; } = 1e-5;

        /// <summary>Linear rope scaling: every rotary angle divided by this factor (1: none).</summary>
        public double LinearRopeFactor { get; init; } = 1;

        public bool Tied { get; init; }

        /// <summary>Bias on q/k/v (Qwen2's layout).</summary>
        public bool QkvBias => Architecture == "Qwen2ForCausalLM";

        public int HeadDim => Hidden / Heads;
    }

    /// <summary>Writes the checkpoint: tensors in <paramref name="fileDtype"/>, in <paramref name="shards"/> files (with an index when more than one).</summary>
    public static TinyCheckpoint Write(Spec spec, ScalarType fileDtype, int shards, int seed = 5)
    {
        var generator = new Generator((ulong)seed);
        var stored = new Dictionary<string, Tensor>(StringComparer.Ordinal);
        void Add(string name, params long[] shape) =>
            stored[name] = (randn(shape, dtype: ScalarType.Float64, generator: generator) * 0.3).to_type(fileDtype).DetachFromDisposeScope();
        void AddNorm(string name, long width) =>
            stored[name] = (1 + (randn(width, dtype: ScalarType.Float64, generator: generator) * 0.1)).to_type(fileDtype).DetachFromDisposeScope();

        Add("model.embed_tokens.weight", spec.Vocab, spec.Hidden);
        for (var i = 0; i < spec.Layers; i++)
        {
            var p = $"model.layers.{i}.";
            Add(p + "self_attn.q_proj.weight", spec.Heads * spec.HeadDim, spec.Hidden);
            Add(p + "self_attn.k_proj.weight", spec.KvHeads * spec.HeadDim, spec.Hidden);
            Add(p + "self_attn.v_proj.weight", spec.KvHeads * spec.HeadDim, spec.Hidden);
            Add(p + "self_attn.o_proj.weight", spec.Hidden, spec.Heads * spec.HeadDim);
            if (spec.QkvBias)
            {
                Add(p + "self_attn.q_proj.bias", spec.Heads * spec.HeadDim);
                Add(p + "self_attn.k_proj.bias", spec.KvHeads * spec.HeadDim);
                Add(p + "self_attn.v_proj.bias", spec.KvHeads * spec.HeadDim);
            }

            Add(p + "mlp.gate_proj.weight", spec.Intermediate, spec.Hidden);
            Add(p + "mlp.up_proj.weight", spec.Intermediate, spec.Hidden);
            Add(p + "mlp.down_proj.weight", spec.Hidden, spec.Intermediate);
            AddNorm(p + "input_layernorm.weight", spec.Hidden);
            AddNorm(p + "post_attention_layernorm.weight", spec.Hidden);
        }

        AddNorm("model.norm.weight", spec.Hidden);
        if (!spec.Tied)
        {
            Add("lm_head.weight", spec.Vocab, spec.Hidden);
        }

        var directory = TempDirectory.Create("guardspace-hf-");
        try
        {
            WriteConfig(directory, spec, fileDtype);
            WriteWeights(directory, stored, shards);
        }
        catch
        {
            directory.Dispose();
            throw;
        }

        var weights = stored.ToDictionary(kv => kv.Key, kv => kv.Value.to_type(ScalarType.Float64).DetachFromDisposeScope(), StringComparer.Ordinal);
        foreach (var t in stored.Values)
        {
            t.Dispose();
        }

        return new TinyCheckpoint(directory.Path, weights, spec);
    }

    /// <summary>config.json as Hugging Face writes it for these sizes.</summary>
    public static void WriteConfig(string directory, Spec spec, ScalarType fileDtype, string? architecture = null, int? kvHeads = null)
    {
        var dtype = fileDtype == ScalarType.BFloat16 ? "bfloat16" : fileDtype == ScalarType.Float16 ? "float16" : "float32";
        var modelType = spec.Architecture == "Qwen2ForCausalLM" ? "qwen2" : "llama";
        var json = string.Create(CultureInfo.InvariantCulture, $$"""
            {
              "architectures": ["{{architecture ?? spec.Architecture}}"],
              "model_type": "{{modelType}}",
              "vocab_size": {{spec.Vocab}},
              "hidden_size": {{spec.Hidden}},
              "intermediate_size": {{spec.Intermediate}},
              "num_hidden_layers": {{spec.Layers}},
              "num_attention_heads": {{spec.Heads}},
              "num_key_value_heads": {{kvHeads ?? spec.KvHeads}},
              "hidden_act": "silu",
              "rms_norm_eps": {{spec.Eps:R}},
              "rope_theta": {{spec.Theta:R}},
              "rope_scaling": null,
              "max_position_embeddings": 64,
              "tie_word_embeddings": {{(spec.Tied ? "true" : "false")}},
              "bos_token_id": 1,
              "eos_token_id": 2,
              "torch_dtype": "{{dtype}}"
            }
            """);
        File.WriteAllText(Path.Combine(directory, "config.json"), json, new UTF8Encoding(false));
    }

    private static void WriteWeights(string directory, Dictionary<string, Tensor> stored, int shards)
    {
        if (shards == 1)
        {
            SafetensorsWriter.Write(Path.Combine(directory, "model.safetensors"), stored, new Dictionary<string, string> { ["format"] = "pt" });
            return;
        }

        // Round-robin over the sorted names, so every shard holds tensors of several layers.
        var names = stored.Keys.Order(StringComparer.Ordinal).ToList();
        var map = new StringBuilder();
        for (var s = 0; s < shards; s++)
        {
            var file = $"model-{s + 1:D5}-of-{shards:D5}.safetensors";
            var part = names.Where((_, i) => i % shards == s).ToDictionary(n => n, n => stored[n], StringComparer.Ordinal);
            SafetensorsWriter.Write(Path.Combine(directory, file), part, new Dictionary<string, string> { ["format"] = "pt" });
            foreach (var n in part.Keys)
            {
                map.Append(CultureInfo.InvariantCulture, $"    \"{n}\": \"{file}\",\n");
            }
        }

        var total = stored.Values.Sum(t => t.NumberOfElements * t.ElementSize);
        var index = $"{{\n  \"metadata\": {{\"total_size\": {total}}},\n  \"weight_map\": {{\n{map.ToString().TrimEnd(',', '\n')}\n  }}\n}}\n";
        File.WriteAllText(Path.Combine(directory, "model.safetensors.index.json"), index, new UTF8Encoding(false));
    }

    public void Dispose()
    {
        foreach (var t in Weights.Values)
        {
            t.Dispose();
        }

        System.IO.Directory.Delete(Directory, recursive: true);
    }
}
