using GuardSpace.Models.Export;
using Spectre.Console;

namespace GuardSpace.Samples.SafeFineTune;

/// <summary>--dump-logits FILE: the fine-tuned model's last-position logits on a prompt file, for comparison with another stack.</summary>
internal static class DumpLogits
{
    public static void Run(Session session, Checkpoint checkpoint)
    {
        if (session.Options.DumpLogits is not { } file)
        {
            return;
        }

        // Each prompt as the calibration saw it (raw BOS + prompt, or rendered by the chat template), text and ids.
        var lines = checkpoint.LogitsPrompts ?? checkpoint.Harmful;
        var prompts = lines.Select(l => (l.Prompt, checkpoint.Encoding.Prompt(l))).ToList();
        LogitsDump.Write(checkpoint.Model, prompts, file);
        AnsiConsole.MarkupLineInterpolated($"wrote the logits on {prompts.Count} prompts to {file} ({new FileInfo(file).Length:N0} bytes)");
        session.Lap("dump the logits");
    }
}
