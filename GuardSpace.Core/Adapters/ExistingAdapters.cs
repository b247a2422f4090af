using static TorchSharp.torch.nn;

namespace GuardSpace.Adapters;

/// <summary>Refuses to attach to (or load into) a model that already holds GuardSpace adapters.</summary>
internal static class ExistingAdapters
{
    /// <exception cref="InvalidOperationException">The model holds <see cref="GuardedLoraAdapter"/> modules, replaced or hooked.</exception>
    public static void ThrowIfGuarded(Module model)
    {
        var paths = model.named_modules().Where(m => m.module is GuardedLoraAdapter).Select(m => $"'{m.name}'").ToList();
        if (paths.Count == 0)
        {
            return;
        }

        throw new InvalidOperationException(
            $"The model is already guarded: it holds {paths.Count} GuardSpace adapter(s) ({string.Join(", ", paths.Take(5))}{(paths.Count > 5 ? ", ..." : string.Empty)}). " +
            "Call Detach() on the GuardedModel that attached them to get the original Linear layers back, then attach again; " +
            "to resume a saved fine-tune, call GuardedModel.Load on a model that holds the original weights. Nothing was changed.");
    }
}
