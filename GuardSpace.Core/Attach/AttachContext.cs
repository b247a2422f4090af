using GuardSpace.Adapters;
using Microsoft.Extensions.Logging;
using static TorchSharp.torch.nn;

namespace GuardSpace.Attach;

/// <summary>What every stage of an attachment (or a load) needs: the model, the validated options, where to report, and when to stop.</summary>
/// <param name="Model">The model the adapters go into.</param>
/// <param name="Options">The validated options (a private copy).</param>
/// <param name="Logger">Receives warnings and the attach report.</param>
/// <param name="Progress">Stage-by-stage progress, or null.</param>
/// <param name="Cancellation">Checked between stages and layers, up to the commit point.</param>
internal sealed record AttachContext(Module Model, GuardedLoraOptions Options, ILogger Logger, IProgress<AttachProgress>? Progress, CancellationToken Cancellation)
{
    /// <summary>Called after each layer's surgery with the layer's name: a fault injected here proves the rollback (tests).</summary>
    public Action<string>? AfterLayerSurgery { get; init; }

    /// <summary>Reports one step of <paramref name="stage"/>.</summary>
    public void Report(AttachStage stage, int done, int total, string? current = null) =>
        Progress?.Report(new AttachProgress(stage, done, total, current));

    /// <summary>Throws when cancellation was requested.</summary>
    public void ThrowIfCancelled() => Cancellation.ThrowIfCancellationRequested();
}
