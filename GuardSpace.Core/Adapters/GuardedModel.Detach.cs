using GuardSpace.Diagnostics;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace GuardSpace.Adapters;

public sealed partial class GuardedModel
{
    /// <summary>
    /// Removes every adapter and gives the model back exactly as it was before <see cref="Attach"/> or <see cref="Load"/>
    /// (PEFT's <c>unload()</c>): the original <see cref="Linear"/> objects return to their parents, hooks and
    /// <c>_guard</c> modules go, weights that hold a residual get their original values back bit for bit (merged or not),
    /// and every <c>requires_grad</c> flag is restored. The fine-tune is discarded: <see cref="Save"/> or
    /// <see cref="Merge"/> first to keep it. After a <c>.to()</c> the layers come back on the model's new device and dtype.
    /// Disposes this handle and the adapters' tensors; optimizers built on <see cref="TrainableParameters"/> must not step again.
    /// </summary>
    public void Detach()
    {
        ThrowIfDisposed();
        if (IsMerged)
        {
            Unmerge(); // exact for weights the model owns (a copy was kept); residuals are discarded below anyway
        }

        _surgery.Undo(Model, RepairReplacedLayers);
        foreach (var adapter in _adapters)
        {
            adapter.ReleaseAfterFailedAttach(adapter.OwnsWeight);
        }

        Log.Detached(_logger, _adapters.Count);
        Dispose();
    }

    /// <summary>
    /// A replaced Linear left the module tree, so a <c>.to()</c> after Attach moved its weight and bias inside the adapter
    /// and disposed the originals it shared. Give it back the parameters the adapter holds now, or move its own weight.
    /// </summary>
    private void RepairReplacedLayers()
    {
        using var noGrad = no_grad();
        foreach (var (original, adapter) in _surgery.Replaced)
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
            else if (original.weight.dtype != weight.dtype || !Internal.Devices.SameAs(original.weight.device, weight.device))
            {
                original.weight = new Parameter(original.weight.to(weight.dtype, weight.device), original.weight.requires_grad);
            }
        }
    }

    // Tensor.Handle throws once the tensor is disposed, which .to() does to the parameters it replaces.
    private static bool SameTensor(Tensor? a, Tensor b) => a is not null && !a.IsInvalid && a.Handle == b.Handle;
}
