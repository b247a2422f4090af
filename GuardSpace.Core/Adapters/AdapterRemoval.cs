using GuardSpace.Diagnostics;
using GuardSpace.Internal;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace GuardSpace.Adapters;

/// <summary>Gives a model back exactly as it was before the attachment (PEFT's <c>unload()</c>).</summary>
internal static class AdapterRemoval
{
    /// <summary>
    /// Unmerges if merged, runs the surgery's undo log (original Linear objects back, hooks and <c>_guard</c> modules gone,
    /// original weight values back bit for bit, <c>requires_grad</c> flags restored), frees the adapters and disposes the state.
    /// </summary>
    public static void Detach(AttachedAdapters state)
    {
        if (state.IsMerged)
        {
            state.Unmerge(); // exact for weights the model owns (a copy was kept); residuals are discarded below anyway
        }

        state.Surgery.Undo(state.Model, () => RepairReplacedLayers(state.Surgery));
        foreach (var adapter in state.List)
        {
            adapter.ReleaseAfterFailedAttach(adapter.OwnsWeight);
        }

        Log.Detached(state.Logger, state.List.Count);
        state.Dispose();
    }

    /// <summary>
    /// A replaced Linear left the module tree, so a <c>.to()</c> after Attach moved its weight and bias inside the adapter
    /// and disposed the originals it shared. Give it back the parameters the adapter holds now, or move its own weight.
    /// </summary>
    private static void RepairReplacedLayers(SurgeryUndo surgery)
    {
        using var noGrad = no_grad();
        foreach (var (original, adapter) in surgery.Replaced)
        {
            var bias = adapter.BiasParameter;
            if (bias is not null && !SameTensor(original.bias, bias))
            {
                original.bias = bias;
            }

            var weight = adapter.WeightParameter!;
            if (!adapter.OwnsWeight)
            {
                if (!SameTensor(original.weight, weight))
                {
                    original.weight = weight;
                }
            }
            else if (original.weight.dtype != weight.dtype || !Devices.SameAs(original.weight.device, weight.device))
            {
                original.weight = new Parameter(original.weight.to(weight.dtype, weight.device), original.weight.requires_grad);
            }
        }
    }

    // Tensor.Handle throws once the tensor is disposed, which .to() does to the parameters it replaces.
    private static bool SameTensor(Tensor? a, Tensor b) => a is not null && !a.IsInvalid && a.Handle == b.Handle;
}
