using GuardSpace.Adapters;
using GuardSpace.Diagnostics;

namespace GuardSpace.Training;

/// <summary>The safety monitor: how far each guarded layer's outputs on the harmful calibration activations moved since attach.</summary>
internal static class HarmfulDriftMonitor
{
    /// <summary>Measures every layer with a harmful factor (a disabled adapter has not moved) and logs the largest change.</summary>
    /// <exception cref="InvalidOperationException">The drift is not tracked for this attachment.</exception>
    public static HarmfulDriftReport Measure(AttachedAdapters state)
    {
        if (state.Factors.Count == 0)
        {
            throw new InvalidOperationException(
                "The harmful drift is not tracked for this model: attach with GuardedLoraOptions.TrackHarmfulDrift = true (or a positive drift penalty) " +
                "and harmful calibration data (CalibrationData.RunHarmfulPrompts or HarmfulCovariances).");
        }

        var layers = state.List.Where(a => a.HarmfulFactor is not null)
            .Select(a => new LayerHarmfulDrift(a.LayerName, a.IsEnabled ? HarmfulDrift.RelativeChange(a) : 0))
            .ToList();
        var report = new HarmfulDriftReport(layers);
        Log.HarmfulDriftMeasured(state.Logger, report.Max, report.MaxLayer ?? string.Empty, report.RootMeanSquare);
        return report;
    }
}
