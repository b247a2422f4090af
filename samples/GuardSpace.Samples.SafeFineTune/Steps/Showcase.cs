using System.Text;
using GuardSpace.Models.Data;
using GuardSpace.Models.Llama;
using Spectre.Console;

namespace GuardSpace.Samples.SafeFineTune;

/// <summary>A few greedy answers before and after fine-tuning: two training prompts and the first harmful one.</summary>
internal sealed class Showcase
{
    private readonly List<(string Text, IReadOnlyList<int> Ids)> prompts;
    private readonly List<string> before;

    private Showcase(List<(string Text, IReadOnlyList<int> Ids)> prompts, List<string> before) => (this.prompts, this.before) = (prompts, before);

    /// <summary>Generates the answers of the model as loaded ("generate (before)").</summary>
    public static Showcase Before(Session session, Checkpoint checkpoint)
    {
        var encoding = checkpoint.Encoding;
        var prompts = checkpoint.Train.Take(2).Select(e => Shown(e, e.Response is null ? encoding.Prompt(e) : encoding.BeforeAnswer(e)))
            .Append(Shown(checkpoint.Harmful[0], encoding.Prompt(checkpoint.Harmful[0]))).ToList();
        var showcase = new Showcase(prompts, [.. prompts.Select(p => Generate(session, checkpoint, p))]);
        session.Lap("generate (before)");
        return showcase;
    }

    /// <summary>Generates the fine-tuned model's answers and prints them under the ones from before ("generate (after)").</summary>
    public void After(Session session, Checkpoint checkpoint)
    {
        var after = prompts.Select(p => Generate(session, checkpoint, p)).ToList();
        for (var i = 0; i < prompts.Count; i++)
        {
            AnsiConsole.MarkupLineInterpolated($"[bold]prompt[/] {Printable(prompts[i].Text)}");
            AnsiConsole.MarkupLineInterpolated($"  before: {Printable(before[i])}");
            AnsiConsole.MarkupLineInterpolated($"  after:  {Printable(after[i])}");
        }

        session.Lap("generate (after)");
    }

    // What is printed: the text the model reads (a chat line's rendering shows the template's markers).
    private static (string Text, IReadOnlyList<int> Ids) Shown(PromptExample line, IReadOnlyList<int> ids) => (line.Chat ? $"[chat] {line.Prompt}" : line.Prompt, ids);

    private static string Generate(Session session, Checkpoint checkpoint, (string Text, IReadOnlyList<int> Ids) prompt) =>
        checkpoint.Tokenizer.Decode(GreedyDecoding.Generate(checkpoint.Model, prompt.Ids, session.Options.NewTokens, checkpoint.Tokenizer.EosId, session.Device));

    // Control characters as \uXXXX, so a random model's output cannot garble the console.
    private static string Printable(string text)
    {
        var s = new StringBuilder();
        foreach (var ch in text)
        {
            s.Append(char.IsControl(ch) ? $"\\u{(int)ch:x4}" : ch.ToString());
        }

        return s.Length == 0 ? "(nothing)" : s.ToString();
    }
}
