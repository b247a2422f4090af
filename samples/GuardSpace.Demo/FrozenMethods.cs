using Spectre.Console;

namespace GuardSpace.Demo;

/// <summary>
/// A method whose adapters were all frozen (no null space anywhere) trained nothing, so its row compares nothing: the
/// run fails (exit code 1, after writing its outputs) unless --allow-frozen accepts such rows.
/// </summary>
public static class FrozenMethods
{
    public static int Check(DemoOptions options, IReadOnlyList<ScenarioResult> scenarios)
    {
        var frozen = scenarios.SelectMany(s => s.Methods).Where(m => m.TrainableParameters == 0).Select(m => m.Method.Name).Distinct(StringComparer.Ordinal).ToList();
        if (frozen.Count == 0)
        {
            return 0;
        }

        var names = string.Join(", ", frozen);
        if (options.AllowFrozen)
        {
            AnsiConsole.MarkupLine($"[yellow]every adapter was frozen for {Markup.Escape(names)}: nothing trained (final_loss null in report.json; --allow-frozen).[/]");
            return 0;
        }

        Console.Error.WriteLine($"error: every adapter was frozen for {names}: nothing trained, so the row compares nothing. Loosen its null-space rule (e.g. relative=1e-4 or fallback=0.99 in --methods) or pass --allow-frozen to accept it.");
        return 1;
    }
}
