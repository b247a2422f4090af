using TorchSharp;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace GuardSpace.Models.Llama;

/// <summary>
/// The SwiGLU MLP, <c>down_proj(silu(gate_proj(x)) * up_proj(x))</c>. gate_proj and up_proj receive the same input
/// tensor (one shared covariance and projector); every projection is invoked through <c>call()</c>.
/// </summary>
public sealed class LlamaMlp : Module<Tensor, Tensor>
{
#pragma warning disable IDE1006 // field names are Hugging Face's module names
    private readonly Module<Tensor, Tensor> gate_proj;
    private readonly Module<Tensor, Tensor> up_proj;
    private readonly Module<Tensor, Tensor> down_proj;
#pragma warning restore IDE1006

    /// <summary>Creates the three projections of <paramref name="config"/>'s shape.</summary>
    public LlamaMlp(LlamaConfig config, ScalarType dtype, Device? device)
        : base(nameof(LlamaMlp))
    {
        ArgumentNullException.ThrowIfNull(config);
        gate_proj = Linear(config.HiddenSize, config.IntermediateSize, config.MlpBias, device, dtype);
        up_proj = Linear(config.HiddenSize, config.IntermediateSize, config.MlpBias, device, dtype);
        down_proj = Linear(config.IntermediateSize, config.HiddenSize, config.MlpBias, device, dtype);
        RegisterComponents();
    }

    /// <inheritdoc />
    public override Tensor forward(Tensor input)
    {
        using var scope = NewDisposeScope();
        var gated = functional.silu(gate_proj.call(input)) * up_proj.call(input);
        return down_proj.call(gated).MoveToOuterDisposeScope();
    }
}
