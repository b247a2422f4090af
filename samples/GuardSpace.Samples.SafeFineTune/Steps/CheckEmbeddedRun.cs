namespace GuardSpace.Samples.SafeFineTune;

/// <summary>
/// The embedded run's own check (CI runs it): the loss must fall, and with --official the harmful prompts' logits stay put
/// (the embedded prompts span an exact null space, so their drift is rounding); by default the refusal constraint ends
/// within one more tolerance of its target. Runs on the user's checkpoint are not judged.
/// </summary>
internal static class CheckEmbeddedRun
{
    public static bool Passed(Session session, TrainingResult training, double harmfulDrift)
    {
        if (!session.Embedded)
        {
            return true;
        }

        // A run with nothing to train passes only when --allow-frozen asked for it.
        var learned = training.Trained ? training.LastLoss < training.FirstLoss : session.Options.AllowFrozen;
        var constraint = training.Constraint;
        var held = constraint?.Latest is not { } reading || reading.ValidationLoss <= reading.Target + (reading.Target - constraint.Baseline);
        return learned && (session.Options.Official ? harmfulDrift <= 1e-5 : held);
    }
}
