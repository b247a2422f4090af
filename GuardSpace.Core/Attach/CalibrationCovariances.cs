using GuardSpace.Adapters;
using GuardSpace.Collection;
using GuardSpace.Targeting;
using TorchSharp.Modules;

namespace GuardSpace.Attach;

/// <summary>The safety or harmful input covariances an attachment needs: given by the user, or collected by running their prompts.</summary>
internal static class CalibrationCovariances
{
    /// <summary>The safety-prompt covariances of <paramref name="names"/>; a collected set is added to <paramref name="owned"/>.</summary>
    public static CovarianceSet Safety(AttachContext context, CalibrationData? calibration, string[] names, List<CovarianceSet> owned) =>
        Resolve(context, new Source("safety", AttachStage.SafetyCovariances, calibration?.SafetyCovariances, calibration?.RunSafetyPrompts,
            nameof(CalibrationData.RunSafetyPrompts), "RunSafetyPrompts or SafetyCovariances"), names, owned);

    /// <summary>The harmful-prompt covariances of <paramref name="names"/>; a collected set is added to <paramref name="owned"/>.</summary>
    public static CovarianceSet Harmful(AttachContext context, CalibrationData? calibration, string[] names, List<CovarianceSet> owned) =>
        Resolve(context, new Source("harmful", AttachStage.HarmfulCovariances, calibration?.HarmfulCovariances, calibration?.RunHarmfulPrompts,
            nameof(CalibrationData.RunHarmfulPrompts), "RunHarmfulPrompts or HarmfulCovariances"), names, owned);

    private sealed record Source(string Kind, AttachStage Stage, CovarianceSet? Given, Action<ActivationCovarianceCollector>? Run, string Callback, string Properties);

    private static CovarianceSet Resolve(AttachContext context, Source source, string[] names, List<CovarianceSet> owned)
    {
        CovarianceSet set;
        if (source.Given is not null)
        {
            set = source.Given;
        }
        else if (source.Run is not null)
        {
            context.Report(source.Stage, 0, 1);
            try
            {
                set = ActivationCovarianceCollector.Collect(context.Model, TargetModules.ExactNames(names), source.Run, context.Options.Collection, context.Logger, context.Cancellation);
            }
            catch (InvalidOperationException ex)
            {
                throw new InvalidOperationException($"Collecting the {source.Kind} covariances (CalibrationData.{source.Callback}) failed: {ex.Message}", ex);
            }

            owned.Add(set);
            context.Report(source.Stage, 1, 1);
        }
        else
        {
            throw new ArgumentException($"{context.Options.Method} needs the {source.Kind}-prompt covariances: set CalibrationData.{source.Properties}.", nameof(CalibrationData));
        }

        var layers = context.Model.named_modules().ToDictionary(m => m.name, m => m.module);
        foreach (var name in names)
        {
            if (!set.TryGet(name, out var covariance))
            {
                throw new ArgumentException($"Layer '{name}': the {source.Kind} covariances have no entry for it. Collect them with the same targets as the adapters.");
            }

            var width = ((Linear)layers[name]).in_features;
            if (covariance.InputWidth != width)
            {
                throw new ArgumentException($"Layer '{name}': the {source.Kind} covariance is {covariance.InputWidth} wide but the layer's input is {width}. It was collected on another model.");
            }
        }

        return set;
    }
}
