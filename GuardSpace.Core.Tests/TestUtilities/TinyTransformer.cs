using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace GuardSpace.Tests.TestUtilities;

/// <summary>A one-head pre-norm decoder block with q, k, v, o, up and down projections, all called through call().</summary>
internal sealed class TinyBlock : Module<Tensor, Tensor>
{
#pragma warning disable IDE1006
    private readonly LayerNorm norm1;
    private readonly LayerNorm norm2;
    public Module<Tensor, Tensor> q_proj;
    public Module<Tensor, Tensor> k_proj;
    public Module<Tensor, Tensor> v_proj;
    public Module<Tensor, Tensor> o_proj;
    public Module<Tensor, Tensor> up_proj;
    public Module<Tensor, Tensor> down_proj;
#pragma warning restore IDE1006

    public TinyBlock(int width, int mlp) : base(nameof(TinyBlock))
    {
        norm1 = LayerNorm(width, dtype: ScalarType.Float64);
        norm2 = LayerNorm(width, dtype: ScalarType.Float64);
        q_proj = Linear(width, width, hasBias: false, dtype: ScalarType.Float64);
        k_proj = Linear(width, width, hasBias: false, dtype: ScalarType.Float64);
        v_proj = Linear(width, width, hasBias: false, dtype: ScalarType.Float64);
        o_proj = Linear(width, width, dtype: ScalarType.Float64);
        up_proj = Linear(width, mlp, dtype: ScalarType.Float64);
        down_proj = Linear(mlp, width, dtype: ScalarType.Float64);
        RegisterComponents();
    }

    public override Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        var h = norm1.call(x);
        var q = q_proj.call(h);
        var k = k_proj.call(h);
        var v = v_proj.call(h);
        var seq = x.shape[1];
        var scores = q.matmul(k.transpose(1, 2)) / Math.Sqrt(x.shape[2]);
        var mask = ones(seq, seq, dtype: ScalarType.Bool, device: x.device).triu(1);
        var attention = scores.masked_fill(mask, double.NegativeInfinity).softmax(-1).matmul(v);
        x = x + o_proj.call(attention);
        var h2 = norm2.call(x);
        x = x + down_proj.call(functional.gelu(up_proj.call(h2)));
        return x.MoveToOuterDisposeScope();
    }
}

/// <summary>Embedding, a ModuleList of <see cref="TinyBlock"/>, and an lm_head (excluded from guarding by default).</summary>
internal sealed class TinyTransformer : Module<Tensor, Tensor>
{
    public const int Vocab = 23;
#pragma warning disable IDE1006
    private readonly Embedding embed;
    private readonly ModuleList<TinyBlock> blocks;
    public Module<Tensor, Tensor> lm_head;
#pragma warning restore IDE1006

    public TinyTransformer(int width = 16, int mlp = 32, int layers = 2, long seed = 1) : base(nameof(TinyTransformer))
    {
        manual_seed(seed);
        embed = Embedding(Vocab, width, dtype: ScalarType.Float64);
        blocks = new ModuleList<TinyBlock>([.. Enumerable.Range(0, layers).Select(_ => new TinyBlock(width, mlp))]);
        lm_head = Linear(width, Vocab, dtype: ScalarType.Float64);
        RegisterComponents();
    }

    public override Tensor forward(Tensor tokens)
    {
        using var scope = NewDisposeScope();
        var x = embed.call(tokens);
        foreach (var block in blocks)
        {
            x = block.call(x);
        }

        return lm_head.call(x).MoveToOuterDisposeScope();
    }

    public static Tensor Tokens(int batch, int seq, int seed)
    {
        var g = new Generator((ulong)seed);
        return randint(0, Vocab, [batch, seq], dtype: ScalarType.Int64, generator: g);
    }

    /// <summary>Every parameter's values, by name, cloned (to prove a model was left unchanged).</summary>
    public static Dictionary<string, Tensor> Snapshot(Module model) =>
        model.named_parameters().ToDictionary(p => p.name, p => p.parameter.detach().clone());
}
