using GuardSpace.Adapters;
using GuardSpace.Internal;
using TorchSharp;
using static TorchSharp.torch;

namespace GuardSpace.Training;

/// <summary>
/// The optimizer hook itself: after backward, add the drift penalty's gradient (when configured) and project the gradient
/// of every guarded A onto its null space; after the step, re-project A in place (<c>A = A P</c>), which keeps the adapter
/// exactly in its null space under Adam and AdamW. <see cref="GuardedOptimizer"/> runs it around the inner step.
/// </summary>
internal sealed class GradientGuard(AttachedAdapters state)
{
    /// <summary>The adapters it guards.</summary>
    public IReadOnlyList<GuardedLoraAdapter> Adapters => state.List;

    /// <summary>Replaces the gradient of every guarded A by <c>grad(A) P</c>, in place, after adding the drift penalty's gradient.</summary>
    public void AfterBackward()
    {
        using var scope = NewDisposeScope();
        var lambda = state.Options.EffectiveHarmfulDriftPenalty;
        if (lambda > 0)
        {
            foreach (var adapter in state.List.Where(a => !a.IsFrozen))
            {
                HarmfulDrift.AddPenaltyGradient(adapter, lambda, state.Options.HarmfulDriftFloor);
            }
        }

        foreach (var group in state.ProjectionGroups)
        {
            ProjectTogether(group.Key, [.. group.Where(a => !a.IsFrozen).Select(a => a.LoraA.grad).OfType<Tensor>()]);
        }
    }

    /// <summary>Re-projects every guarded A in place (<c>A = A P</c>).</summary>
    public void AfterStep()
    {
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        foreach (var group in state.ProjectionGroups)
        {
            ProjectTogether(group.Key, [.. group.Where(a => !a.IsFrozen).Select(a => (Tensor)a.LoraA)]);
        }
    }

    /// <summary>
    /// Projects the row blocks of the layers that share one projector (q/k/v, gate/up) with one product: for small r,
    /// one (k r) x n times n x d multiplication is markedly cheaper than k separate ones.
    /// </summary>
    private static void ProjectTogether(ProjectorHandle handle, List<Tensor> blocks)
    {
        if (blocks.Count == 0)
        {
            return;
        }

        var first = blocks[0];
        if (blocks.Count == 1 || blocks.Any(b => b.dtype != first.dtype || !b.device.SameAs(first.device)))
        {
            blocks.ForEach(b => handle.For(b).ProjectRowsInPlace(b));
            return;
        }

        var stacked = cat(blocks, 0);
        handle.For(stacked).ProjectRowsInPlace(stacked);
        long offset = 0;
        foreach (var block in blocks)
        {
            block.copy_(stacked.narrow(0, offset, block.shape[0]));
            offset += block.shape[0];
        }
    }
}
