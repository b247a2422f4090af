using static TorchSharp.torch;

namespace GuardSpace.Adapters;

/// <summary>Proves that a forward pass reaches every adapter (a hooked Linear called through <c>forward()</c> is skipped silently).</summary>
internal static class InterceptionCheck
{
    /// <summary>Runs <paramref name="forward"/> under no_grad and throws naming every adapter it never reached.</summary>
    public static void Verify(IReadOnlyList<GuardedLoraAdapter> adapters, Action forward)
    {
        var before = adapters.Select(a => a.Invocations).ToList();
        using (no_grad())
        {
            forward();
        }

        var missed = adapters.Where((a, i) => a.Invocations == before[i]).ToList();
        if (missed.Count > 0)
        {
            throw new InvalidOperationException(
                $"The forward pass never reached the adapters of {string.Join(", ", missed.Select(a => $"'{a.LayerName}'{(a.IsHookMode ? " (forward hook)" : string.Empty)}"))}. " +
                "A layer intercepted with a forward hook runs the adapter only when its parent calls it through call(), not forward(): " +
                "change the parent to call(), declare the field as Module<Tensor, Tensor> so the layer can be replaced, or exclude the layer from the targets.");
        }
    }
}
