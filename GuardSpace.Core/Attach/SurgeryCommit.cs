using GuardSpace.Adapters;
using static TorchSharp.torch;

namespace GuardSpace.Attach;

/// <summary>The surgery of an attachment, as one transaction with an undo log.</summary>
internal static class SurgeryCommit
{
    /// <summary>
    /// Replaces or hooks every planned layer and freezes the base model, recording an undo action for each change. On
    /// any failure or cancellation it runs them and rethrows. Its last statement is the commit point of the attachment.
    /// </summary>
    public static SurgeryUndo Commit(AttachContext context, List<LayerPlan> plans, List<GuardedLoraAdapter> adapters, Dictionary<string, Tensor> hookResiduals)
    {
        var undo = new SurgeryUndo(context.Model);
        try
        {
            for (var i = 0; i < plans.Count; i++)
            {
                context.ThrowIfCancelled();
                var plan = plans[i];
                var adapter = adapters[i];
                if (plan.Mode == InterceptionMode.Replaced)
                {
                    undo.Push(ModuleSurgery.Replace(plan.Parent, plan.Child, plan.Layer, adapter));
                    undo.RecordReplaced(plan.Layer, adapter);
                }
                else
                {
                    if (hookResiduals.TryGetValue(plan.Name, out var residual))
                    {
                        WriteResidual(undo, plan, residual);
                    }

                    undo.Push(ModuleSurgery.RegisterBeside(plan.Parent, plan.Child + AdapterAssembly.HookSuffix, adapter));
                    adapter.AttachHook();
                    undo.Push(adapter.DetachHook);
                }

                context.AfterLayerSurgery?.Invoke(plan.Name);
                foreach (var p in new[] { plan.Layer.weight, plan.Layer.bias })
                {
                    if (p is not null)
                    {
                        p.requires_grad = false;
                    }
                }
            }

            if (context.Options.FreezeBaseModel)
            {
                FreezeEverythingBut(context, adapters);
            }

            // The commit point: a cancellation up to here is honoured, and rolled back.
            context.ThrowIfCancelled();
        }
        catch
        {
            undo.Undo(context.Model);
            throw;
        }

        return undo;
    }

    /// <summary>A hooked Linear keeps its module, so its weight takes the residual in place; the original is kept until undone.</summary>
    private static void WriteResidual(SurgeryUndo undo, LayerPlan plan, Tensor residual)
    {
        var linear = plan.Layer;
        var original = linear.weight!.detach().clone().DetachFromDisposeScope();
        using (no_grad())
        {
            linear.weight!.copy_(residual);
        }

        // Kept until undone (rollback or Detach); read the weight then, since .to() replaces it.
        undo.Push(() =>
        {
            using (no_grad())
            {
                linear.weight!.copy_(original);
            }

            original.Dispose();
        });
    }

    private static void FreezeEverythingBut(AttachContext context, List<GuardedLoraAdapter> adapters)
    {
        var trainable = adapters.SelectMany(a => new[] { a.LoraA.Handle, a.LoraB.Handle }).ToHashSet();
        foreach (var (_, parameter) in context.Model.named_parameters())
        {
            if (!trainable.Contains(parameter.Handle))
            {
                parameter.requires_grad = false;
            }
        }
    }
}
