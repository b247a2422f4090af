using GuardSpace.Projection;
using Microsoft.Extensions.Logging;
using TorchSharp.Modules;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace GuardSpace.Adapters;

/// <summary>
/// The state of one attachment: the adapters in module order, the projectors and harmful covariance factors they share,
/// the per-layer reports and the undo log of the surgery. The attach pipeline builds it, the training, monitoring and
/// serialization code reads it, and <see cref="GuardedModel"/> is the public front over it. Owns the projectors and factors.
/// </summary>
internal sealed class AttachedAdapters : IDisposable
{
    private bool _disposed;

    public AttachedAdapters(AttachedParts parts, IReadOnlyList<LayerAttachReport> layers, SurgeryUndo surgery)
    {
        Model = parts.Model;
        Options = parts.Options;
        Logger = parts.Logger;
        List = parts.Adapters;
        Projectors = parts.Projectors;
        Factors = parts.Factors;
        Layers = layers;
        Surgery = surgery;
        ProjectionGroups = [.. List.Where(a => a.Projector is not null).GroupBy(a => a.Projector!)];
    }

    /// <summary>The model the adapters live in.</summary>
    public Module Model { get; }

    /// <summary>The options of the attachment (a private copy).</summary>
    public GuardedLoraOptions Options { get; }

    /// <summary>Where warnings and reports go.</summary>
    public ILogger Logger { get; }

    /// <summary>The adapters, in module order.</summary>
    public IReadOnlyList<GuardedLoraAdapter> List { get; }

    /// <summary>One projector per covariance group of projected layers.</summary>
    public IReadOnlyList<ProjectorHandle> Projectors { get; }

    /// <summary>The harmful covariance factors, when the drift is tracked.</summary>
    public IReadOnlyList<HarmfulCovarianceFactor> Factors { get; }

    /// <summary>What was done to each layer.</summary>
    public IReadOnlyList<LayerAttachReport> Layers { get; }

    /// <summary>How to give the model back as it was.</summary>
    public SurgeryUndo Surgery { get; }

    /// <summary>The projected adapters grouped by the projector they share (q/k/v, gate/up).</summary>
    public IReadOnlyList<IGrouping<ProjectorHandle, GuardedLoraAdapter>> ProjectionGroups { get; }

    /// <summary>True once disposed (detached, or the handle was disposed).</summary>
    public bool IsDisposed => _disposed;

    /// <summary>True while the adapters are merged into the frozen weights.</summary>
    public bool IsMerged => List.Count > 0 && List[0].IsMerged;

    /// <summary>The adapter factors that train (A and B of every adapter that is not frozen).</summary>
    public IReadOnlyList<Parameter> TrainableParameters() => [.. List.Where(a => !a.IsFrozen).SelectMany(a => new[] { a.LoraA, a.LoraB })];

    /// <summary>Turns every adapter off (the model computes its original weights) or back on.</summary>
    public void SetEnabled(bool enabled)
    {
        foreach (var adapter in List)
        {
            adapter.SetEnabled(enabled);
        }
    }

    /// <summary>Adds <c>s B A</c> into every frozen weight; every merged weight is computed and checked before any is written.</summary>
    public void Merge()
    {
        if (List.Any(a => a.IsMerged))
        {
            throw new InvalidOperationException("The adapters are already merged.");
        }

        if (List.Any(a => !a.IsEnabled))
        {
            throw new InvalidOperationException("Enable the adapters before merging them.");
        }

        using var scope = NewDisposeScope();
        var merged = List.Select(a => a.MergedWeightOrThrow()).ToList();
        for (var i = 0; i < merged.Count; i++)
        {
            List[i].CommitMerge(merged[i]);
        }
    }

    /// <summary>Subtracts <c>s B A</c> from every frozen weight again.</summary>
    public void Unmerge()
    {
        if (!List.All(a => a.IsMerged))
        {
            throw new InvalidOperationException("The adapters are not merged.");
        }

        foreach (var adapter in List)
        {
            adapter.Unmerge();
        }
    }

    /// <inheritdoc />
    public void Dispose()
    {
        if (_disposed)
        {
            return;
        }

        _disposed = true;
        foreach (var projector in Projectors)
        {
            projector.Dispose();
        }

        foreach (var factor in Factors)
        {
            factor.Dispose();
        }
    }
}
