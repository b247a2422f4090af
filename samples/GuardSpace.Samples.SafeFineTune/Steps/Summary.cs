using System.Globalization;
using Spectre.Console;

namespace GuardSpace.Samples.SafeFineTune;

/// <summary>The last step: each stage's seconds, the total, and OK or FAILED.</summary>
internal static class Summary
{
    public static int Run(Session session, bool ok)
    {
        var table = new Table().AddColumns("stage", "seconds");
        foreach (var (stage, time) in session.Timings)
        {
            table.AddRow(stage, time.TotalSeconds.ToString("F1", CultureInfo.InvariantCulture));
        }

        table.AddRow("[bold]total[/]", session.Timings.Sum(t => t.Time.TotalSeconds).ToString("F1", CultureInfo.InvariantCulture));
        AnsiConsole.Write(table);
        AnsiConsole.MarkupLine(ok ? "[green]OK[/]" : "[red]FAILED[/]");
        return ok ? ExitCode.Ok : ExitCode.Failed;
    }
}
