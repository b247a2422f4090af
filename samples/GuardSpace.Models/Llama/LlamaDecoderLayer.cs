using TorchSharp;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace GuardSpace.Models.Llama;

/// <summary>A pre-norm decoder layer: <c>x + attn(norm(x))</c>, then <c>x + mlp(norm(x))</c>.</summary>
public sealed class LlamaDecoderLayer : Module<Tensor, AttentionContext, Tensor>
{
#pragma warning disable IDE1006 // field names are Hugging Face's module names
    private readonly LlamaAttention self_attn;
    private readonly LlamaMlp mlp;
    private readonly RmsNorm input_layernorm;
    private readonly RmsNorm post_attention_layernorm;
#pragma warning restore IDE1006

    /// <summary>Creates a layer of <paramref name="config"/>'s shape.</summary>
    public LlamaDecoderLayer(LlamaConfig config, ScalarType dtype, Device? device)
        : base(nameof(LlamaDecoderLayer))
    {
        ArgumentNullException.ThrowIfNull(config);
        self_attn = new LlamaAttention(config, dtype, device);
        mlp = new LlamaMlp(config, dtype, device);
        input_layernorm = new RmsNorm(config.HiddenSize, config.RmsNormEps, dtype, device);
        post_attention_layernorm = new RmsNorm(config.HiddenSize, config.RmsNormEps, dtype, device);
        RegisterComponents();
    }

    /// <inheritdoc />
    public override Tensor forward(Tensor hidden, AttentionContext context)
    {
        using var scope = NewDisposeScope();
        var x = hidden + self_attn.call(input_layernorm.call(hidden), context);
        x = x + mlp.call(post_attention_layernorm.call(x));
        return x.MoveToOuterDisposeScope();
    }
}
