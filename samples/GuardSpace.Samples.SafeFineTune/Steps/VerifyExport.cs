using Spectre.Console;
using static TorchSharp.torch;

namespace GuardSpace.Samples.SafeFineTune;

/// <summary>
/// Step 5 (--verify, always in the embedded run): the export applied by PEFT's rule to a fresh copy of the ORIGINAL
/// checkpoint must give the fine-tuned model's logits.
/// </summary>
internal static class VerifyExport
{
    /// <summary>True when the export reproduces the model (or when not asked to check).</summary>
    public static bool Run(Session session, Checkpoint checkpoint, IReadOnlyList<Models.Data.PromptExample> train)
    {
        var options = session.Options;
        if (!options.Verify)
        {
            return true;
        }

        using var merged = PeftCheck.LoadMerged(checkpoint.Directory, options.Out, options.Dtype, session.Device);
        merged.eval();
        var probe = train.Take(options.Batch).Select(e => Batches.Example(checkpoint.Encoding, e, options.MaxLength).Ids).ToList();
        double error;
        using (var scope = NewDisposeScope())
        {
            var (ids, mask) = Batches.Pad(probe, checkpoint.Pad, session.Device);
            using var noGrad = no_grad();
            error = LogitChange.Relative([merged.Forward(ids, mask)], [checkpoint.Model.Forward(ids, mask)]);
        }

        var bound = options.Dtype is ScalarType.Float32 or ScalarType.Float64 ? 1e-4 : 3e-2;
        AnsiConsole.MarkupLineInterpolated($"original checkpoint + exported adapter (PEFT's W + alpha/r B A) vs the fine-tuned model: relative error {error:G3} (bound {bound:G1})");
        session.Lap("verify the export");
        return error <= bound;
    }
}
