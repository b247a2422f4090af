using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace GuardSpace.Models.Llama;

/// <summary>
/// Root-mean-square norm: <c>weight * x / sqrt(mean(x^2) + eps)</c>, normalised in at least float32 (as Hugging Face
/// does for half-precision models) and scaled in the input's dtype.
/// </summary>
public sealed class RmsNorm : Module<Tensor, Tensor>
{
#pragma warning disable IDE1006 // the field name is the state-dict key
    private readonly Parameter weight;
#pragma warning restore IDE1006
    private readonly double _eps;

    /// <summary>A norm over the last dimension of width <paramref name="width"/>, weight initialised to ones.</summary>
    public RmsNorm(long width, double eps, ScalarType dtype = ScalarType.Float32, Device? device = null)
        : base(nameof(RmsNorm))
    {
        _eps = eps;
        weight = new Parameter(ones(width, dtype: dtype, device: device));
        RegisterComponents();
    }

    /// <summary>The learned scale.</summary>
    public Parameter Weight => weight;

    /// <inheritdoc />
    public override Tensor forward(Tensor input)
    {
        using var scope = NewDisposeScope();
        var dtype = input.dtype;
        var x = dtype is ScalarType.Float16 or ScalarType.BFloat16 ? input.to_type(ScalarType.Float32) : input;
        var normalised = x * (x.pow(2).mean([-1], keepdim: true) + _eps).rsqrt();
        return (weight * normalised.to_type(dtype)).MoveToOuterDisposeScope();
    }
}
