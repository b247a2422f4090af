using GuardSpace.Adapters;
using GuardSpace.Collection;
using GuardSpace.Internal;
using GuardSpace.Targeting;
using TorchSharp.Modules;

namespace GuardSpace.Attach;

/// <summary>
/// A new attachment, stage by stage: select and check the targets, collect the calibration covariances the method needs,
/// fit the projectors, initialise every adapter, then commit the surgery. Nothing touches the model before the surgery,
/// and a failure anywhere frees what was built and leaves the model exactly as it was.
/// </summary>
internal static class AttachPipeline
{
    /// <summary>Runs the attachment described by <paramref name="context"/>.</summary>
    public static AttachedAdapters Run(AttachContext context, CalibrationData? calibration)
    {
        var options = context.Options;
        var method = options.Method;
        ExistingAdapters.ThrowIfGuarded(context.Model);
        var targets = LinearLayerSelector.Select(context.Model, options.Targets);
        CheckTargets(targets, options.Rank);

        var owned = new List<CovarianceSet>();
        var parts = new AttachedParts(context.Model, options, context.Logger);
        try
        {
            var names = targets.Select(t => t.Name).ToArray();
            var safety = method.NeedsSafetyCovariance() ? CalibrationCovariances.Safety(context, calibration, names, owned) : null;
            var harmful = method.UsesProjector() || options.TracksHarmfulDrift ? CalibrationCovariances.Harmful(context, calibration, names, owned) : null;
            var fitted = harmful is null ? null : ProjectorFitting.Fit(context, parts, harmful, names);
            using var initialisation = new FreshInitialisation(context, safety, harmful, fitted);
            var projectorOf = fitted?.ProjectorOf ?? new Dictionary<string, ProjectorHandle>(StringComparer.Ordinal);
            return AdapterAssembly.Build(context, parts, targets, projectorOf, initialisation.Initialise);
        }
        catch
        {
            parts.ReleaseAfterFailure();
            throw;
        }
        finally
        {
            owned.ForEach(s => s.Dispose());
        }
    }

    private static void CheckTargets(IReadOnlyList<(string Name, Linear Layer)> targets, int rank)
    {
        foreach (var (name, layer) in targets)
        {
            var max = Math.Min(layer.in_features, layer.out_features);
            if (rank > max)
            {
                throw new ArgumentOutOfRangeException(nameof(rank), rank,
                    $"Layer '{name}' is {layer.out_features} x {layer.in_features}: the adapter rank must be between 1 and {max}. Lower GuardedLoraOptions.Rank or exclude this layer from the targets.");
            }

            if (!TensorChecks.IsFloatingPoint(layer.weight!.dtype))
            {
                throw new ArgumentException($"Layer '{name}': the weight has dtype {layer.weight.dtype}; guarded adapters need floating-point weights.");
            }

            TensorChecks.ThrowIfNonFinite(layer.weight, name, "the weight", "Repair or reload the model's weights before attaching adapters.");
        }
    }
}
