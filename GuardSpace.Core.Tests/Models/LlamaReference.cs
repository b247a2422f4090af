using TorchSharp;
using static TorchSharp.torch;

namespace GuardSpace.Tests.Models;

/// <summary>
/// An independent float64 Llama forward written with plain tensor ops for one unpadded sequence: RMS norms, per-head
/// attention loops where query head h reads key/value head h / (heads / kv_heads), rotary positions from an explicit
/// rotation of each pair (i, i + d/2) by the angle p * theta^(-2i/d) / linear factor (angles computed with Math.Cos/Math.Sin), a causal
/// -inf mask, SwiGLU with silu(g) = g / (1 + e^-g), and the untied or tied head.
/// </summary>
internal static class LlamaReference
{
    public static Tensor Logits(IReadOnlyDictionary<string, Tensor> w, TinyCheckpoint.Spec s, long[] ids)
    {
        using var scope = NewDisposeScope();
        var t = ids.Length;
        var d = s.HeadDim;
        var x = w["model.embed_tokens.weight"].index_select(0, tensor(ids));   // [t, hidden]
        var (cos, sin) = Angles(t, d, s.Theta, s.LinearRopeFactor);
        for (var layer = 0; layer < s.Layers; layer++)
        {
            var p = $"model.layers.{layer}.";
            var h = Rms(x, w[p + "input_layernorm.weight"], s.Eps);
            var q = Project(h, w, p + "self_attn.q_proj");
            var k = Project(h, w, p + "self_attn.k_proj");
            var v = Project(h, w, p + "self_attn.v_proj");
            var heads = new List<Tensor>();
            for (var head = 0; head < s.Heads; head++)
            {
                var group = head / (s.Heads / s.KvHeads);
                var qh = Rotate(q.narrow(1, head * d, d), cos, sin);
                var kh = Rotate(k.narrow(1, group * d, d), cos, sin);
                var vh = v.narrow(1, group * d, d);
                var scores = qh.matmul(kh.T) / Math.Sqrt(d);
                var future = ones(t, t, dtype: ScalarType.Bool).triu(1);
                heads.Add(scores.masked_fill(future, double.NegativeInfinity).softmax(1).matmul(vh));
            }

            x = x + cat(heads, 1).matmul(w[p + "self_attn.o_proj.weight"].T);
            var h2 = Rms(x, w[p + "post_attention_layernorm.weight"], s.Eps);
            var gate = h2.matmul(w[p + "mlp.gate_proj.weight"].T);
            var up = h2.matmul(w[p + "mlp.up_proj.weight"].T);
            var silu = gate / (1 + (-gate).exp());
            x = x + (silu * up).matmul(w[p + "mlp.down_proj.weight"].T);
        }

        x = Rms(x, w["model.norm.weight"], s.Eps);
        var head_ = s.Tied ? w["model.embed_tokens.weight"] : w["lm_head.weight"];
        return x.matmul(head_.T).MoveToOuterDisposeScope();
    }

    private static Tensor Project(Tensor h, IReadOnlyDictionary<string, Tensor> w, string name)
    {
        var y = h.matmul(w[name + ".weight"].T);
        return w.TryGetValue(name + ".bias", out var b) ? y + b : y;
    }

    private static Tensor Rms(Tensor x, Tensor weight, double eps) => x / (x.square().mean([1], keepdim: true) + eps).sqrt() * weight;

    /// <summary>cos and sin of p * theta^(-2i/d) / factor, [t, d/2], from Math.Cos/Math.Sin.</summary>
    private static (Tensor Cos, Tensor Sin) Angles(int t, int d, double theta, double factor)
    {
        var c = new double[t * (d / 2)];
        var s = new double[t * (d / 2)];
        for (var p = 0; p < t; p++)
        {
            for (var i = 0; i < d / 2; i++)
            {
                var angle = p * Math.Pow(theta, -2.0 * i / d) / factor;
                c[(p * (d / 2)) + i] = Math.Cos(angle);
                s[(p * (d / 2)) + i] = Math.Sin(angle);
            }
        }

        return (tensor(c, [t, d / 2]), tensor(s, [t, d / 2]));
    }

    /// <summary>Rotates each pair (x_i, x_{i+d/2}) by its angle: (a cos - b sin, b cos + a sin).</summary>
    private static Tensor Rotate(Tensor x, Tensor cos, Tensor sin)
    {
        var half = x.shape[1] / 2;
        var a = x.narrow(1, 0, half);
        var b = x.narrow(1, half, half);
        return cat([(a * cos) - (b * sin), (b * cos) + (a * sin)], 1);
    }
}
