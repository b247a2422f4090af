using GuardSpace.Adapters;
using GuardSpace.Diagnostics;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace GuardSpace.Attach;

/// <summary>
/// Builds an adapter for every target from its <see cref="LayerInit"/> without touching the model, then commits the
/// surgery as one transaction. Shared by a new attachment and a load.
/// </summary>
internal static class AdapterAssembly
{
    /// <summary>The suffix of the adapter module registered beside a Linear that is intercepted with a forward hook.</summary>
    public const string HookSuffix = "_guard";

    /// <summary>
    /// Plans, builds and commits. The adapters go into <paramref name="parts"/> as they are built, so the caller can free
    /// them if this throws; on success the returned state owns everything in <paramref name="parts"/>.
    /// </summary>
    public static AttachedAdapters Build(
        AttachContext context,
        AttachedParts parts,
        IReadOnlyList<(string Name, Linear Layer)> targets,
        IReadOnlyDictionary<string, ProjectorHandle> projectorOf,
        Func<int, string, Linear, ProjectorHandle?, LayerInit> initialise)
    {
        var options = context.Options;
        var plans = LayerPlan.For(context.Model, targets);
        var residuals = new Dictionary<string, Tensor>(StringComparer.Ordinal);
        var reports = new List<LayerAttachReport>();
        using var scope = NewDisposeScope();
        for (var i = 0; i < plans.Count; i++)
        {
            context.ThrowIfCancelled();
            var plan = plans[i];
            context.Report(AttachStage.Decomposition, i, plans.Count, plan.Name);
            projectorOf.TryGetValue(plan.Name, out var projector);
            var init = initialise(i, plan.Name, plan.Layer, projector);
            var hook = plan.Mode == InterceptionMode.ForwardHook;
            Parameter? weight = null;
            if (!hook)
            {
                weight = init.Residual is null ? plan.Layer.weight! : new Parameter(init.Residual.detach().clone(), requires_grad: false);
                weight.DetachFromDisposeScope();
            }
            else if (init.Residual is not null)
            {
                residuals[plan.Name] = init.Residual;
            }

            var frozen = new FrozenPart(weight, hook ? null : plan.Layer.bias, hook ? plan.Layer : null);
            var adapter = new GuardedLoraAdapter(plan.Name, frozen, init.A, init.B, options.Scale)
            {
                Projector = projector,
                OwnsWeight = !hook && init.Residual is not null,
                HarmfulFactor = init.HarmfulFactor,
                HarmfulEnergy = init.HarmfulEnergy,
                HarmfulMeanEigenvalue = init.HarmfulMeanEigenvalue,
                FrozenWeightIsOriginal = init.Residual is null,
                OriginalWeight = WeightFingerprint.Of(plan.Layer.weight!),
            };
            parts.Adapters.Add(adapter);
            var isFrozen = projector?.Projector.NullDimension == 0;
            adapter.SetFrozen(isFrozen);
            reports.Add(new LayerAttachReport(
                plan.Name, plan.Layer.out_features, plan.Layer.in_features, adapter.Rank, options.Method, plan.Mode,
                hook ? plan.Name + HookSuffix : plan.Name, init.Group, init.Diagnostics, projector?.Projector.Diagnostics, isFrozen));
        }

        context.Report(AttachStage.Surgery, 0, plans.Count);
        var surgery = SurgeryCommit.Commit(context, plans, parts.Adapters, residuals);
        var state = new AttachedAdapters(parts, reports, surgery);
        Log.Attached(context.Logger, options.Method.ToString(), state.List.Count, state.List.Count(a => a.IsFrozen), state.TrainableParameters().Sum(p => p.NumberOfElements));
        context.Report(AttachStage.Surgery, plans.Count, plans.Count);
        return state;
    }
}
