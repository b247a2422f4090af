using GuardSpace.Projection;
using Microsoft.Extensions.Logging;
using static TorchSharp.torch.nn;

namespace GuardSpace.Adapters;

/// <summary>
/// What an attachment is being built from, gathered while it is built: the model, options and logger, and the adapters,
/// projectors and factors made so far. Until the attachment commits these are owned here, and <see cref="ReleaseAfterFailure"/>
/// frees them without touching anything the model shares with them.
/// </summary>
internal sealed class AttachedParts(Module model, GuardedLoraOptions options, ILogger logger)
{
    public Module Model { get; } = model;

    public GuardedLoraOptions Options { get; } = options;

    public ILogger Logger { get; } = logger;

    public List<GuardedLoraAdapter> Adapters { get; } = [];

    public List<ProjectorHandle> Projectors { get; } = [];

    public List<HarmfulCovarianceFactor> Factors { get; } = [];

    /// <summary>Frees the adapters, projectors and factors of a failed attachment; parameters the model shares are kept.</summary>
    public void ReleaseAfterFailure()
    {
        foreach (var adapter in Adapters)
        {
            adapter.ReleaseAfterFailedAttach(adapter.OwnsWeight);
        }

        Projectors.ForEach(p => p.Dispose());
        Factors.ForEach(f => f.Dispose());
    }
}
