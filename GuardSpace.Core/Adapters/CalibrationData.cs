using GuardSpace.Collection;

namespace GuardSpace.Adapters;

/// <summary>
/// The calibration input of <see cref="GuardedModel.Attach"/>: either callbacks that run the model on the prompts (the
/// library attaches an <see cref="ActivationCovarianceCollector"/> around them) or covariances collected beforehand.
/// </summary>
public sealed class CalibrationData
{
    /// <summary>Runs the model's forward (under no_grad) on the safety-triggering prompts; call <see cref="ActivationCovarianceCollector.SetTokenMask"/> before each padded batch.</summary>
    public Action<ActivationCovarianceCollector>? RunSafetyPrompts { get; init; }

    /// <summary>Runs the model's forward (under no_grad) on the harmful prompts that define the null space.</summary>
    public Action<ActivationCovarianceCollector>? RunHarmfulPrompts { get; init; }

    /// <summary>Safety covariances collected beforehand (used instead of <see cref="RunSafetyPrompts"/>). Not disposed by the library.</summary>
    public CovarianceSet? SafetyCovariances { get; init; }

    /// <summary>Harmful covariances collected beforehand (used instead of <see cref="RunHarmfulPrompts"/>). Not disposed by the library.</summary>
    public CovarianceSet? HarmfulCovariances { get; init; }
}
