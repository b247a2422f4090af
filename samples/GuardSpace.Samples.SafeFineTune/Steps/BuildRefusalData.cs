using GuardSpace.Models.Behaviour;
using Spectre.Console;

namespace GuardSpace.Samples.SafeFineTune;

/// <summary>
/// Step: the refusal data, the aligned model's own answers to the harmful prompts (one in four kept for validation);
/// null with --no-refusal-constraint.
/// </summary>
internal static class BuildRefusalData
{
    public static RefusalData? Run(Session session, Checkpoint checkpoint)
    {
        if (!session.Options.RefusalConstraint)
        {
            return null;
        }

        var refusals = RefusalSetup.Build(checkpoint, session.Options, session.Device);
        AnsiConsole.MarkupLineInterpolated($"refusal data: {refusals.Training.Count} training / {refusals.Validation.Count} validation pairs from the aligned model's answers to {refusals.PromptCount} harmful prompts");
        session.Lap("build the refusal data");
        return refusals;
    }
}
