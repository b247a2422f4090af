using GuardSpace.Models.Data;
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

        var prompts = session.Options.LogitsPrompts is { } path ? PromptFile.ReadPrompts(path) : checkpoint.Harmful;
        LogitsDump.Write(checkpoint.Model, checkpoint.Tokenizer, prompts, file);
        AnsiConsole.MarkupLineInterpolated($"wrote the logits on {prompts.Count} prompts to {file} ({new FileInfo(file).Length:N0} bytes)");
        session.Lap("dump the logits");
    }
}
