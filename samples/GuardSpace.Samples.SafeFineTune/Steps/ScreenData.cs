using GuardSpace.Models.Data;
using Spectre.Console;

namespace GuardSpace.Samples.SafeFineTune;

/// <summary>
/// Step (with --benign): the poison screen. Training examples the aligned model reads as harmful are dropped (or
/// relabelled, or only reported); a screen that leaves nothing to train on fails the run.
/// </summary>
internal static class ScreenData
{
    public static IReadOnlyList<PromptExample> Run(Session session, Checkpoint checkpoint)
    {
        if (checkpoint.Benign is not { } benign)
        {
            return checkpoint.Train;
        }

        var screened = DataScreen.Apply(checkpoint, benign, checkpoint.Train, session.Options, session.Device);
        AnsiConsole.MarkupLineInterpolated($"poison screen: flagged {screened.Flagged.Count} of {checkpoint.Train.Count} training examples (threshold {screened.Threshold:G4}, policy {screened.Policy})");
        if (screened.Items.Count == 0)
        {
            throw new SampleFailure("the poison screen flagged every training example; check --benign (it should look like your training prompts) or use --screen keep.");
        }

        session.Lap("screen the training data");
        return screened.Items;
    }
}
