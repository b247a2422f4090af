using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace GuardSpace.Models.Llama;

/// <summary>The decoder stack: <c>embed_tokens</c>, <c>layers.{i}</c> and the final <c>norm</c>. Returns the last hidden states.</summary>
public sealed class LlamaModel : Module<Tensor, Tensor>
{
#pragma warning disable IDE1006 // field names are Hugging Face's module names
    private readonly Embedding embed_tokens;
    private readonly ModuleList<LlamaDecoderLayer> layers;
    private readonly RmsNorm norm;
#pragma warning restore IDE1006
    private readonly RotaryPositions _rotary;

    /// <summary>Creates the stack of <paramref name="config"/>'s shape.</summary>
    public LlamaModel(LlamaConfig config, ScalarType dtype, Device? device)
        : base(nameof(LlamaModel))
    {
        ArgumentNullException.ThrowIfNull(config);
        embed_tokens = Embedding(config.VocabSize, config.HiddenSize, device: device, dtype: dtype);
        layers = new ModuleList<LlamaDecoderLayer>([.. Enumerable.Range(0, config.NumHiddenLayers).Select(_ => new LlamaDecoderLayer(config, dtype, device))]);
        norm = new RmsNorm(config.HiddenSize, config.RmsNormEps, dtype, device);
        _rotary = new RotaryPositions(config);
        RegisterComponents();
    }

    /// <summary>The token embedding (also the output head when the embeddings are tied).</summary>
    public Embedding EmbedTokens => embed_tokens;

    /// <inheritdoc />
    public override Tensor forward(Tensor inputIds) => Forward(inputIds, null);

    /// <summary>
    /// Hidden states [b, t, hidden] for <paramref name="inputIds"/> [b, t]. <paramref name="attentionMask"/> [b, t]
    /// (1 or true = real token, 0 = padding) masks padded keys and numbers positions from the first real token, so
    /// right- and left-padded batches give each sequence the logits it has alone; null means no padding.
    /// </summary>
    public Tensor Forward(Tensor inputIds, Tensor? attentionMask)
    {
        ArgumentNullException.ThrowIfNull(inputIds);
        using var scope = NewDisposeScope();
        var x = embed_tokens.call(inputIds);
        var t = inputIds.shape[1];
        Tensor positions;
        Tensor? mask = null;
        if (attentionMask is null)
        {
            positions = arange(t, dtype: ScalarType.Int64, device: inputIds.device).unsqueeze(0);
        }
        else
        {
            var real = attentionMask.to(ScalarType.Bool, inputIds.device);
            positions = (real.to_type(ScalarType.Int64).cumsum(-1) - 1).clamp_min(0);
            var causal = ones(t, t, dtype: ScalarType.Bool, device: inputIds.device).tril();
            var diagonal = eye(t, dtype: ScalarType.Bool, device: inputIds.device);

            // A padding query keeps its own position so no row is all-masked (its output is never used).
            mask = causal.unsqueeze(0).logical_and(real.unsqueeze(1)).logical_or(diagonal).unsqueeze(1);
        }

        var (cos, sin) = _rotary.Tables(positions, x.dtype);
        var context = new AttentionContext(cos, sin, mask);
        foreach (var layer in layers)
        {
            x = layer.call(x, context);
        }

        return norm.call(x).MoveToOuterDisposeScope();
    }
}
