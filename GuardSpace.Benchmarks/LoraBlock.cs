using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace GuardSpace.Benchmarks;

/// <summary>
/// A minimal LoRA linear layer for the benchmarks (stand-in until the library's adapter lands): frozen W (m x n),
/// trainable A (r x n) and B (m x r), scale 1. With <see cref="ForwardProjector"/> set it computes the official
/// GuardSpace forward <c>y = W x + B (A (P x))</c> with a dense n x n P; otherwise plain LoRA <c>y = W x + B (A x)</c>.
/// </summary>
public sealed class LoraLinear : nn.Module<Tensor, Tensor>
{
    private readonly Parameter weight;
    private readonly Parameter lora_A;
    private readonly Parameter lora_B;
    private Tensor? forward_projector;

    public LoraLinear(string name, long inFeatures, long outFeatures, int rank, long seed, Device device, ScalarType dtype = ScalarType.Float32) : base(name)
    {
        // Drawn in float32 on the CPU whatever the target, so that every device and dtype starts from the same values.
        var g = BenchEnv.Seeded(seed);
        weight = new Parameter((randn(outFeatures, inFeatures, generator: g) / Math.Sqrt(inFeatures)).to(dtype, device), requires_grad: false);
        lora_A = new Parameter((randn(rank, inFeatures, generator: g) / Math.Sqrt(inFeatures)).to(dtype, device), requires_grad: true);
        lora_B = new Parameter((randn(outFeatures, rank, generator: g) * 0.01).to(dtype, device), requires_grad: true);
        InFeatures = inFeatures;
        RegisterComponents();
    }

    public long InFeatures { get; }

    public Parameter A => lora_A;

    public Parameter B => lora_B;

    /// <summary>Dense n x n projector applied to every token in the forward (official formulation); null for plain LoRA.</summary>
    public Tensor? ForwardProjector
    {
        get => forward_projector;
        set
        {
            forward_projector = value;
            if (value is not null)
            {
                register_buffer("forward_projector", value, persistent: false);
            }
        }
    }

    public override Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        var input = forward_projector is null ? x : x.matmul(forward_projector); // P symmetric: x P = (P x^T)^T
        var y = nn.functional.linear(x, weight) + nn.functional.linear(nn.functional.linear(input, lora_A), lora_B);
        return y.MoveToOuterDisposeScope();
    }
}

/// <summary>
/// A Llama-shaped decoder block (RMSNorm, causal multi-head attention, SwiGLU MLP) with the seven target layers
/// q_proj, k_proj, v_proj, o_proj, gate_proj, up_proj, down_proj, built by a factory: <see cref="LoraLinear"/> for the
/// own-LoRA variants, <see cref="nn.Linear"/> for the library's adapter and the covariance collector. Inputs of q/k/v
/// are shared, as are those of gate/up. Parent calls go through <c>call()</c>, so forward hooks fire.
/// </summary>
public sealed class LlamaBlock : nn.Module<Tensor, Tensor>
{
    public const long Hidden = 1024;
    public const long Intermediate = 2816;
    public const long HeadCount = 8;

    private readonly nn.Module<Tensor, Tensor> q_proj, k_proj, v_proj, o_proj, gate_proj, up_proj, down_proj;
    private readonly long _heads;

    /// <param name="make">(name, in, out, seed) to layer.</param>
    public LlamaBlock(Func<string, long, long, long, nn.Module<Tensor, Tensor>> make, long hidden = Hidden, long intermediate = Intermediate, long heads = HeadCount)
        : base("block")
    {
        _heads = heads;
        q_proj = make("q_proj", hidden, hidden, 101);
        k_proj = make("k_proj", hidden, hidden, 102);
        v_proj = make("v_proj", hidden, hidden, 103);
        o_proj = make("o_proj", hidden, hidden, 104);
        gate_proj = make("gate_proj", hidden, intermediate, 105);
        up_proj = make("up_proj", hidden, intermediate, 106);
        down_proj = make("down_proj", intermediate, hidden, 107);
        RegisterComponents();
    }

    /// <summary>Own LoRA layers of rank <paramref name="rank"/> on <paramref name="device"/>.</summary>
    public static LlamaBlock WithLora(int rank, Device device) =>
        new((name, inF, outF, seed) => new LoraLinear(name, inF, outF, rank, seed, device));

    /// <summary>Plain frozen <see cref="nn.Linear"/> layers (no bias) with seeded weights on <paramref name="device"/>.</summary>
    public static LlamaBlock WithLinear(Device device) =>
        new((name, inF, outF, seed) =>
        {
            var linear = nn.Linear(inF, outF, hasBias: false);
            using (no_grad())
            {
                linear.weight!.copy_(randn(outF, inF, generator: BenchEnv.Seeded(seed)) / Math.Sqrt(inF));
            }

            linear.weight!.requires_grad = false;
            linear.to(device);
            return linear;
        });

    /// <summary>The seven layers with the name of the input they read: "attn_in" (q, k, v), "o_in", "mlp_in" (gate, up), "down_in".</summary>
    public IReadOnlyList<(nn.Module<Tensor, Tensor> Layer, string Input)> Targets =>
    [
        (q_proj, "attn_in"), (k_proj, "attn_in"), (v_proj, "attn_in"), (o_proj, "o_in"),
        (gate_proj, "mlp_in"), (up_proj, "mlp_in"), (down_proj, "down_in"),
    ];

    /// <summary>The own LoRA adapters (empty for a plain block).</summary>
    public IEnumerable<(LoraLinear Layer, string Input)> Adapters =>
        Targets.Where(t => t.Layer is LoraLinear).Select(t => ((LoraLinear)t.Layer, t.Input));

    /// <summary>Input widths by input name.</summary>
    public static IReadOnlyDictionary<string, long> InputWidths { get; } = new Dictionary<string, long>
    {
        ["attn_in"] = Hidden, ["o_in"] = Hidden, ["mlp_in"] = Hidden, ["down_in"] = Intermediate,
    };

    public override Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        var (batch, tokens, hidden) = (x.shape[0], x.shape[1], x.shape[2]);
        var headDim = hidden / _heads;
        var h = RmsNorm(x);
        Tensor Heads(Tensor t) => t.view(batch, tokens, _heads, headDim).transpose(1, 2);
        var q = Heads(q_proj.call(h));
        var k = Heads(k_proj.call(h));
        var v = Heads(v_proj.call(h));
        var scores = q.matmul(k.transpose(-2, -1)) / Math.Sqrt(headDim);
        var mask = ones(tokens, tokens, dtype: ScalarType.Bool, device: x.device).triu(1);
        var attention = scores.masked_fill(mask, float.NegativeInfinity).softmax(-1).matmul(v);
        var merged = attention.transpose(1, 2).reshape(batch, tokens, hidden);
        x = x + o_proj.call(merged);
        var h2 = RmsNorm(x);
        var y = x + down_proj.call(nn.functional.silu(gate_proj.call(h2)) * up_proj.call(h2));
        return y.MoveToOuterDisposeScope();
    }

    private static Tensor RmsNorm(Tensor x) => x * (x.pow(2).mean([-1L], keepdim: true) + 1e-6).rsqrt();
}
