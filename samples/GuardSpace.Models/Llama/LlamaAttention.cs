using TorchSharp;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace GuardSpace.Models.Llama;

/// <summary>
/// Grouped-query self-attention with rotary positions. The projections are fields typed <c>Module&lt;Tensor, Tensor&gt;</c>
/// and are invoked through <c>call()</c>, so GuardSpace can replace them and its hooks see them; q_proj, k_proj and
/// v_proj receive the same input tensor, so they share one covariance and one projector.
/// </summary>
public sealed class LlamaAttention : Module<Tensor, AttentionContext, Tensor>
{
#pragma warning disable IDE1006 // field names are Hugging Face's module names
    private readonly Module<Tensor, Tensor> q_proj;
    private readonly Module<Tensor, Tensor> k_proj;
    private readonly Module<Tensor, Tensor> v_proj;
    private readonly Module<Tensor, Tensor> o_proj;
#pragma warning restore IDE1006
    private readonly int _heads;
    private readonly int _kvHeads;
    private readonly int _headDim;
    private readonly int? _slidingWindow;

    /// <summary>Creates the four projections of <paramref name="config"/>'s shape.</summary>
    public LlamaAttention(LlamaConfig config, ScalarType dtype, Device? device)
        : base(nameof(LlamaAttention))
    {
        ArgumentNullException.ThrowIfNull(config);
        _heads = config.NumAttentionHeads;
        _kvHeads = config.KeyValueHeads;
        _headDim = config.HeadDimension;
        _slidingWindow = config.SlidingWindow;
        var qkvBias = config.AttentionBias || config.QkvBias;
        q_proj = Linear(config.HiddenSize, _heads * _headDim, qkvBias, device, dtype);
        k_proj = Linear(config.HiddenSize, _kvHeads * _headDim, qkvBias, device, dtype);
        v_proj = Linear(config.HiddenSize, _kvHeads * _headDim, qkvBias, device, dtype);
        o_proj = Linear(_heads * _headDim, config.HiddenSize, config.AttentionBias, device, dtype);
        RegisterComponents();
    }

    /// <inheritdoc />
    public override Tensor forward(Tensor hidden, AttentionContext context)
    {
        ArgumentNullException.ThrowIfNull(context);
        using var scope = NewDisposeScope();
        var (b, t) = (hidden.shape[0], hidden.shape[1]);
        if (_slidingWindow is { } window && t > window)
        {
            throw new NotSupportedException($"The input has {t} positions but the model uses sliding-window attention over {window}; this decoder attends to the whole prefix, so keep inputs at most {window} tokens long.");
        }

        var q = q_proj.call(hidden).view(b, t, _heads, _headDim).transpose(1, 2);
        var k = k_proj.call(hidden).view(b, t, _kvHeads, _headDim).transpose(1, 2);
        var v = v_proj.call(hidden).view(b, t, _kvHeads, _headDim).transpose(1, 2);
        q = RotaryPositions.Apply(q, context.Cos, context.Sin);
        k = RotaryPositions.Apply(k, context.Cos, context.Sin);
        if (_kvHeads != _heads)
        {
            // Query head h reads key/value head h / (heads / kv_heads), as Hugging Face's repeat_kv does.
            k = k.repeat_interleave(_heads / _kvHeads, dim: 1);
            v = v.repeat_interleave(_heads / _kvHeads, dim: 1);
        }

        var attended = context.Mask is null
            ? functional.scaled_dot_product_attention(q, k, v, is_casual: true)
            : functional.scaled_dot_product_attention(q, k, v, context.Mask);
        var merged = attended.transpose(1, 2).reshape(b, t, _heads * _headDim);
        return o_proj.call(merged).MoveToOuterDisposeScope();
    }
}
