using GuardSpace.Models.Checkpoints;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace GuardSpace.Models.Llama;

/// <summary>
/// A Llama-family causal language model (Llama, Mistral, Qwen2 layouts) with Hugging Face's module paths:
/// <c>model.embed_tokens</c>, <c>model.layers.{i}.self_attn.q_proj|k_proj|v_proj|o_proj</c>,
/// <c>model.layers.{i}.mlp.gate_proj|up_proj|down_proj</c>, <c>model.layers.{i}.input_layernorm</c>,
/// <c>model.layers.{i}.post_attention_layernorm</c>, <c>model.norm</c> and <c>lm_head</c> (absent when the embeddings
/// are tied). Its state-dict keys are the checkpoint's tensor names, and every Linear is invoked through <c>call()</c>.
/// </summary>
public sealed class LlamaForCausalLM : Module<Tensor, Tensor>
{
    /// <summary>Standard deviation of the random initialisation (Hugging Face's <c>initializer_range</c> default).</summary>
    public const double InitializerRange = 0.02;

#pragma warning disable IDE1006 // field names are Hugging Face's module names
    private readonly LlamaModel model;
    private readonly Module<Tensor, Tensor>? lm_head;
#pragma warning restore IDE1006

    /// <summary>
    /// A model of <paramref name="config"/>'s shape with random weights: every Linear and the embedding drawn from
    /// N(0, 0.02^2) by a generator seeded with <paramref name="seed"/>, biases zero, norms one.
    /// </summary>
    public LlamaForCausalLM(LlamaConfig config, ScalarType dtype = ScalarType.Float32, Device? device = null, long seed = 0)
        : base(nameof(LlamaForCausalLM))
    {
        ArgumentNullException.ThrowIfNull(config);
        config.Validate();
        Config = config;
        model = new LlamaModel(config, dtype, device);
        lm_head = config.TieWordEmbeddings ? null : Linear(config.HiddenSize, config.VocabSize, hasBias: false, device: device, dtype: dtype);
        RegisterComponents();
        Initialise(seed);
    }

    /// <summary>The configuration this model was built from.</summary>
    public LlamaConfig Config { get; }

    /// <summary>The decoder stack (<c>model</c>).</summary>
    public LlamaModel Model => model;

    /// <summary>
    /// Loads a Hugging Face checkpoint folder (see <see cref="HfCheckpoint.Load"/>): <c>config.json</c> and
    /// <c>model.safetensors</c> or shards with <c>model.safetensors.index.json</c>, converted to <paramref name="dtype"/>.
    /// </summary>
    public static LlamaForCausalLM FromPretrained(string directory, ScalarType dtype = ScalarType.Float32, Device? device = null) =>
        HfCheckpoint.Load(directory, dtype, device);

    /// <summary>
    /// Writes this model as a Hugging Face checkpoint folder (see <see cref="HfCheckpoint.Save"/>): <c>config.json</c> and
    /// <c>model.safetensors</c>, or shards of at most <paramref name="maxShardBytes"/> with an index.
    /// </summary>
    public void SavePretrained(string directory, long? maxShardBytes = null) => HfCheckpoint.Save(this, directory, maxShardBytes);

    /// <inheritdoc />
    public override Tensor forward(Tensor inputIds) => Forward(inputIds, null);

    /// <summary>
    /// Logits [b, t, vocab] for <paramref name="inputIds"/> [b, t] (int64); <paramref name="attentionMask"/> [b, t] marks
    /// real tokens (1) and padding (0), or is null when nothing is padded.
    /// </summary>
    public Tensor Forward(Tensor inputIds, Tensor? attentionMask)
    {
        using var scope = NewDisposeScope();
        var hidden = model.Forward(inputIds, attentionMask);
        var logits = lm_head is null ? functional.linear(hidden, model.EmbedTokens.weight!) : lm_head.call(hidden);
        return logits.MoveToOuterDisposeScope();
    }

    private void Initialise(long seed)
    {
        using var noGrad = no_grad();
        var generator = new Generator((ulong)seed);
        foreach (var (name, parameter) in named_parameters())
        {
            if (name.EndsWith("norm.weight", StringComparison.Ordinal))
            {
                continue; // ones
            }

            if (name.EndsWith(".bias", StringComparison.Ordinal))
            {
                parameter.zero_();
                continue;
            }

            var draw = parameter.dtype == ScalarType.Float64 ? ScalarType.Float64 : ScalarType.Float32;
            using var values = randn(parameter.shape, dtype: draw, generator: generator);
            parameter.copy_(values.mul_(InitializerRange));
        }
    }
}
