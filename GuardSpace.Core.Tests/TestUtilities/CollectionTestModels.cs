using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace GuardSpace.Tests.TestUtilities;

/// <summary>Seeded float64 tensors for the collection tests.</summary>
internal static class CollectionTestData
{
    public static Tensor Randn(ulong seed, params long[] shape)
    {
        using var g = new Generator(seed);
        return randn(shape, ScalarType.Float64, generator: g);
    }

    public static void Reinitialise(Linear layer, ulong seed)
    {
        using var noGrad = no_grad();
        using var g = new Generator(seed);
        var w = layer.weight!;
        w.copy_(randn(w.shape, w.dtype, generator: g) * (1.0 / Math.Sqrt(w.shape[1])));
        layer.bias?.copy_(randn(layer.bias.shape, layer.bias.dtype, generator: g) * 0.1);
    }
}

/// <summary>
/// A transformer-like block on a [batch, seq, 6] input whose layers all act per token:
/// q/k/v read the same x; o reads a mix of them; up reads x + o; down reads tanh(up). Every child runs through call().
/// </summary>
internal sealed class CollectionBlock : Module<Tensor, Tensor>
{
    public const int Width = 6;
    public const int Hidden = 10;

    public readonly Module<Tensor, Tensor> q_proj;
    public readonly Module<Tensor, Tensor> k_proj;
    public readonly Module<Tensor, Tensor> v_proj;
    public readonly Module<Tensor, Tensor> o_proj;
    public readonly Module<Tensor, Tensor> up_proj;
    public readonly Module<Tensor, Tensor> down_proj;

    public CollectionBlock(ulong seed = 1) : base(nameof(CollectionBlock))
    {
        q_proj = Make(Width, Width, seed);
        k_proj = Make(Width, Width, seed + 1);
        v_proj = Make(Width, Width, seed + 2);
        o_proj = Make(Width, Width, seed + 3);
        up_proj = Make(Width, Hidden, seed + 4);
        down_proj = Make(Hidden, Width, seed + 5);
        RegisterComponents();
    }

    public static string[] LayerNames => ["q_proj", "k_proj", "v_proj", "o_proj", "up_proj", "down_proj"];

    public override Tensor forward(Tensor x)
    {
        var q = q_proj.call(x);
        var k = k_proj.call(x);
        var v = v_proj.call(x);
        var o = o_proj.call(q * k.sigmoid() + v);
        var h = x + o;
        var u = up_proj.call(h);
        return h + down_proj.call(u.tanh());
    }

    /// <summary>Each layer's input for <paramref name="x"/>, computed through forward() so no hook fires.</summary>
    public Dictionary<string, Tensor> ReferenceInputs(Tensor x)
    {
        using var noGrad = no_grad();
        var q = q_proj.forward(x);
        var k = k_proj.forward(x);
        var v = v_proj.forward(x);
        var a = q * k.sigmoid() + v;
        var h = x + o_proj.forward(a);
        var t = up_proj.forward(h).tanh();
        return new Dictionary<string, Tensor>
        {
            ["q_proj"] = x,
            ["k_proj"] = x,
            ["v_proj"] = x,
            ["o_proj"] = a,
            ["up_proj"] = h,
            ["down_proj"] = t,
        };
    }

    private static Linear Make(int inFeatures, int outFeatures, ulong seed)
    {
        var layer = Linear(inFeatures, outFeatures, hasBias: true, dtype: ScalarType.Float64);
        CollectionTestData.Reinitialise(layer, seed);
        return layer;
    }
}

/// <summary>Calls <c>first</c> through call() and <c>second</c> through forward(), so <c>second</c>'s hook never fires.</summary>
internal sealed class ForwardCallingModel : Module<Tensor, Tensor>
{
    private readonly Linear first;
    private readonly Linear second;

    public ForwardCallingModel() : base(nameof(ForwardCallingModel))
    {
        first = Linear(4, 4, dtype: ScalarType.Float64);
        second = Linear(4, 4, dtype: ScalarType.Float64);
        RegisterComponents();
    }

    public override Tensor forward(Tensor x) => second.forward(first.call(x));
}

/// <summary>Feeds a and b the same tensor unless <see cref="Split"/> is set, then b gets a copy.</summary>
internal sealed class SwitchingModel : Module<Tensor, Tensor>
{
    private readonly Linear a;
    private readonly Linear b;

    public SwitchingModel() : base(nameof(SwitchingModel))
    {
        a = Linear(4, 4, dtype: ScalarType.Float64);
        b = Linear(4, 4, dtype: ScalarType.Float64);
        RegisterComponents();
    }

    public bool Split { get; set; }

    public override Tensor forward(Tensor x) => a.call(x) + b.call(Split ? x.clone() : x);
}
