using Spectre.Console;

namespace GuardSpace.Demo;

/// <summary>What the demo leaves behind: one table and goal check per scenario on the console, report.json and the charts.</summary>
public static class DemoOutputs
{
    public static void Write(DemoContext demo, BaseModels bases, IReadOnlyList<ScenarioResult> scenarios)
    {
        var o = demo.Options;
        var aligned = bases.Aligned;
        var goals = scenarios.SelectMany(sc => Report.Goals(o, sc.Scenario, aligned, sc.Methods)).ToList();
        foreach (var sc in scenarios)
        {
            Report.PrintTable(sc.Scenario, aligned, sc.Methods, goals.Where(g => g.Scenario == sc.Scenario).ToList());
        }

        var jsonPath = Report.WriteJson(Path.Combine(o.Out, "report.json"), o, demo.Config, bases.Pretrained, aligned, scenarios, demo.Timings, goals, bases.Spectrum);
        var charts = scenarios.Select((sc, i) => Charts.HarmfulVsAccuracy(Path.Combine(o.Out, i == 0 ? "harmful_vs_accuracy.png" : $"harmful_vs_accuracy_{sc.Scenario.ToString().ToLowerInvariant()}.png"), aligned, sc.Methods, sc.Scenario.ToString().ToLowerInvariant())).ToList();
        var chart2 = bases.Spectrum is null ? null : Charts.SpectrumChart(Path.Combine(o.Out, "spectrum.png"), bases.Spectrum);
        var chart3 = Charts.HarmfulDriftChart(Path.Combine(o.Out, "harmful_drift.png"), scenarios[0].Methods);
        var chart4 = Charts.MultiplierChart(Path.Combine(o.Out, "refusal_multiplier.png"), scenarios);
        AnsiConsole.MarkupLine($"wrote {Markup.Escape(jsonPath)}, {Markup.Escape(string.Join(", ", charts))}, {Markup.Escape(chart3)}{(chart4 is null ? string.Empty : ", " + Markup.Escape(chart4))}{(chart2 is null ? string.Empty : ", " + Markup.Escape(chart2))}");
        AnsiConsole.MarkupLine($"total {demo.Timings["total_seconds"]:F0} s");
    }
}
