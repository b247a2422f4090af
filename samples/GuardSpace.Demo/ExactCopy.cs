using TorchSharp;
using GuardSpace.Adapters;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace GuardSpace.Demo;

/// <summary>
/// A float64 copy of a (possibly guarded) model for evaluation. Greedy decoding in float32 flips near-ties when the thread
/// count or the CPU's kernels change the rounding; in float64 the same weights give the same answers on any machine, so
/// the harmful score and the accuracy depend on the trained weights only.
/// </summary>
public static class ExactCopy
{
    /// <summary>A fresh float64 model of <paramref name="config"/> computing what <paramref name="model"/> computes (its adapters merged, <c>W' + s B A</c>).</summary>
    public static Module<Tensor, Tensor> Of(ModelConfig config, Module<Tensor, Tensor> model, GuardedModel? guarded, Device device)
    {
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var copy = config.Create();
        copy.to(ScalarType.Float64);
        copy.to(device);
        var source = model.state_dict();
        var adapters = guarded?.Adapters.Values.ToDictionary(a => a.LayerName, StringComparer.Ordinal) ?? [];
        foreach (var (name, target) in copy.state_dict())
        {
            var dot = name.LastIndexOf('.');
            var (layer, leaf) = dot < 0 ? (string.Empty, name) : (name[..dot], name[(dot + 1)..]);
            Tensor value = adapters.TryGetValue(layer, out var a) && leaf is "weight" or "bias"
                ? leaf == "weight"
                    ? a.FrozenWeight.to(ScalarType.Float64) + (a.IsMerged || !a.IsEnabled ? 0 : a.Scale * a.LoraB.to(ScalarType.Float64).mm(a.LoraA.to(ScalarType.Float64)))
                    : a.FrozenBias ?? throw new InvalidOperationException($"{name}: the copy has a bias the adapter lacks")
                : source.TryGetValue(name, out var t) ? t : throw new InvalidOperationException($"{name} is not in the evaluated model's state");
            target.copy_(value);
        }

        copy.eval();
        return copy;
    }
}
