using GuardSpace.Adapters;
using TorchSharp.Modules;
using static TorchSharp.torch.nn;

namespace GuardSpace.Attach;

/// <summary>How one target layer will be intercepted, decided before anything is changed.</summary>
/// <param name="Name">The layer's dotted path.</param>
/// <param name="Layer">The Linear.</param>
/// <param name="Parent">The module that holds it.</param>
/// <param name="Child">Its name inside the parent.</param>
/// <param name="Mode">Replaced, or kept and hooked.</param>
internal sealed record LayerPlan(string Name, Linear Layer, Module Parent, string Child, InterceptionMode Mode)
{
    /// <summary>Plans every target: replace the Linear where its parent allows it, otherwise hook it.</summary>
    public static List<LayerPlan> For(Module model, IReadOnlyList<(string Name, Linear Layer)> targets) =>
    [
        .. targets.Select(t =>
        {
            var (parent, child) = ModuleSurgery.ResolveParent(model, t.Name);
            var replace = ModuleSurgery.CanReplace(parent, child, t.Layer, typeof(GuardedLoraAdapter));
            return new LayerPlan(t.Name, t.Layer, parent, child, replace ? InterceptionMode.Replaced : InterceptionMode.ForwardHook);
        }),
    ];
}
