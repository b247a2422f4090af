using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace GuardSpace.Demo;

/// <summary>The demo's two model families (<c>--family</c>).</summary>
public enum ModelFamily
{
    /// <summary><see cref="TinyLm"/>: LayerNorm, learned positions, multi-head attention, GELU MLP.</summary>
    Gpt,

    /// <summary>GuardSpace.Models' Llama decoder: RMSNorm, rotary positions, grouped-query attention, SwiGLU MLP.</summary>
    Llama,
}

public sealed record ModelConfig(int Vocab, int Width = 128, int Layers = 2, int Heads = 4, int Mlp = 512, int MaxLen = 48, ModelFamily Family = ModelFamily.Gpt)
{
    /// <summary>A fresh, randomly initialised model of this configuration.</summary>
    public Module<Tensor, Tensor> Create()
    {
        if (Family == ModelFamily.Gpt)
        {
            return new TinyLm(this);
        }

        // SwiGLU with 2/3 of the GELU MLP's width keeps the parameter count comparable; half as many key/value heads (GQA).
        var config = new GuardSpace.Models.Llama.LlamaConfig
        {
            VocabSize = Vocab,
            HiddenSize = Width,
            IntermediateSize = (Mlp * 2 / 3 + 7) / 8 * 8,
            NumHiddenLayers = Layers,
            NumAttentionHeads = Heads,
            NumKeyValueHeads = Math.Max(1, Heads / 2),
            MaxPositionEmbeddings = MaxLen,
        };
        return new GuardSpace.Models.Llama.LlamaForCausalLM(config, seed: 0);
    }

    /// <summary>
    /// The layer whose input, at a prompt's last token, the poison screen reads: the last block's MLP input (the residual
    /// stream after the last attention, normalised), from which the answer's first token is decided. A method, not a property:
    /// the record's text keys the model cache.
    /// </summary>
    public string ScreenLayer() => Family == ModelFamily.Gpt ? $"blocks.{Layers - 1}.up_proj" : $"model.layers.{Layers - 1}.mlp.up_proj";

    /// <summary>The layer whose spectrum the demo charts (the last block's MLP down projection).</summary>
    public string SpectrumLayer => Family == ModelFamily.Gpt ? $"blocks.{Layers - 1}.down_proj" : $"model.layers.{Layers - 1}.mlp.down_proj";

    /// <summary>Weights of every Linear layer but the output head, keyed by module path: detached copies.</summary>
    public static Dictionary<string, Tensor> ProjectionWeights(Module<Tensor, Tensor> model)
    {
        var result = new Dictionary<string, Tensor>(StringComparer.Ordinal);
        foreach (var (name, module) in model.named_modules())
        {
            if (module is Linear lin && !name.EndsWith("lm_head", StringComparison.Ordinal))
            {
                result[name] = lin.weight.detach().clone().DetachFromDisposeScope();
            }
        }

        return result;
    }
}

/// <summary>
/// A small decoder-only transformer: token + position embeddings, pre-norm blocks with causal self-attention and a
/// GELU MLP, a final LayerNorm and an output head named <c>lm_head</c>. The q, k, v, o, up and down projections are
/// managed <see cref="Linear"/> layers held in fields typed <see cref="Module{T,TResult}"/> so that an adapter library
/// can replace them, and they are always invoked through <c>call()</c> so that forward hooks fire.
/// </summary>
public sealed class TinyLm : Module<Tensor, Tensor>
{
    private readonly Embedding tok_emb;
    private readonly Embedding pos_emb;
    private readonly ModuleList<Block> blocks;
    private readonly LayerNorm ln_f;
    private readonly Linear lm_head;

    public TinyLm(ModelConfig config) : base(nameof(TinyLm))
    {
        Config = config;
        tok_emb = Embedding(config.Vocab, config.Width);
        pos_emb = Embedding(config.MaxLen, config.Width);
        blocks = new ModuleList<Block>();
        for (int i = 0; i < config.Layers; i++)
        {
            blocks.Add(new Block(config));
        }

        ln_f = LayerNorm(config.Width);
        lm_head = Linear(config.Width, config.Vocab, hasBias: false);
        RegisterComponents();
    }

    public ModelConfig Config { get; }

    /// <summary>ids [batch, seq] (int64) to logits [batch, seq, vocab].</summary>
    public override Tensor forward(Tensor ids)
    {
        using var scope = NewDisposeScope();
        var t = ids.shape[1];
        var pos = arange(t, dtype: ScalarType.Int64, device: ids.device);
        var x = tok_emb.call(ids) + pos_emb.call(pos);
        using (var mask = ones(t, t, dtype: ScalarType.Bool, device: ids.device).triu(1))
        {
            foreach (var b in blocks)
            {
                x = b.Forward(x, mask);
            }
        }

        return lm_head.call(ln_f.call(x)).MoveToOuterDisposeScope();
    }

    public sealed class Block : Module<Tensor, Tensor>
    {
        private readonly LayerNorm ln_1;
        private readonly LayerNorm ln_2;
        private readonly int heads;

        // Typed Module<Tensor,Tensor> (not the sealed Linear) so that the library can swap in adapters.
        private Module<Tensor, Tensor> q_proj;
        private Module<Tensor, Tensor> k_proj;
        private Module<Tensor, Tensor> v_proj;
        private Module<Tensor, Tensor> o_proj;
        private Module<Tensor, Tensor> up_proj;
        private Module<Tensor, Tensor> down_proj;

        public Block(ModelConfig c) : base(nameof(Block))
        {
            heads = c.Heads;
            ln_1 = LayerNorm(c.Width);
            ln_2 = LayerNorm(c.Width);
            q_proj = Linear(c.Width, c.Width, hasBias: false);
            k_proj = Linear(c.Width, c.Width, hasBias: false);
            v_proj = Linear(c.Width, c.Width, hasBias: false);
            o_proj = Linear(c.Width, c.Width, hasBias: false);
            up_proj = Linear(c.Width, c.Mlp, hasBias: false);
            down_proj = Linear(c.Mlp, c.Width, hasBias: false);
            RegisterComponents();
        }

        public override Tensor forward(Tensor x) => throw new NotSupportedException("Use Forward(x, mask).");

        public Tensor Forward(Tensor x, Tensor causalMask)
        {
            long b = x.shape[0], t = x.shape[1], w = x.shape[2], d = w / heads;
            var h = ln_1.call(x);
            var q = q_proj.call(h).view(b, t, heads, d).transpose(1, 2);
            var k = k_proj.call(h).view(b, t, heads, d).transpose(1, 2);
            var v = v_proj.call(h).view(b, t, heads, d).transpose(1, 2);
            var scores = q.matmul(k.transpose(-2, -1)) / Math.Sqrt(d);
            var att = functional.softmax(scores.masked_fill(causalMask, double.NegativeInfinity), -1);
            var y = att.matmul(v).transpose(1, 2).reshape(b, t, w);
            x = x + o_proj.call(y);
            var m = up_proj.call(ln_2.call(x));
            return x + down_proj.call(functional.gelu(m));
        }
    }
}
