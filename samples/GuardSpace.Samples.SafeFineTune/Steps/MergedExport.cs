using GuardSpace.Models.Checkpoints;
using GuardSpace.Models.Export;
using Spectre.Console;

namespace GuardSpace.Samples.SafeFineTune;

/// <summary>
/// --merge-and-save DIR: the fine-tuned model with its adapters merged, written as a Hugging Face checkpoint folder, then
/// reloaded from that folder and run on the harmful prompts: a served copy must give the fine-tuned model's logits.
/// </summary>
internal static class MergedExport
{
    /// <summary>Relative logit error allowed when the folder holds the dtype the model runs in (rounding only).</summary>
    public const double Bound = 1e-5;

    /// <summary>Writes and checks the folder; false when the reloaded logits differ (nothing to do without the option).</summary>
    public static bool Run(Session session, Checkpoint checkpoint, GuardedModel guarded, HarmfulLogits fineTuned)
    {
        if (session.Options.MergeAndSave is not { } directory)
        {
            return true;
        }

        var dtype = session.Options.Dtype;
        MergedCheckpointWriter.Write(checkpoint.Model, directory, new MergedExportOptions
        {
            Merge = guarded.Merge,
            Unmerge = guarded.Unmerge,
            SourceDirectory = checkpoint.Directory,
            Dtype = dtype,
            Overwrite = true,
        });
        AnsiConsole.MarkupLineInterpolated($"wrote the merged model ({dtype}) as a Hugging Face checkpoint to {directory}");

        using var reloaded = new Checkpoint(directory, HfCheckpoint.Load(directory, dtype, session.Device), checkpoint.Encoding)
        {
            Safety = checkpoint.Safety,
            Harmful = checkpoint.Harmful,
            Train = checkpoint.Train,
        };
        using var served = HarmfulLogits.Measure(session, reloaded);
        var error = fineTuned.ChangeTo(served);
        var ok = error <= Bound;
        AnsiConsole.MarkupLineInterpolated($"merged checkpoint reloaded vs the fine-tuned model on the harmful prompts: relative error {error:G3} (bound {Bound:G1}) {(ok ? "OK" : "FAILED")}");
        session.Lap("merge and save");
        return ok;
    }
}
