using Spectre.Console;

namespace GuardSpace.Samples.SafeFineTune;

/// <summary>
/// Step: a run in which every adapter is frozen (no layer kept a null space) trains nothing and exports an adapter that
/// changes nothing; it fails here, unless --allow-frozen asks to go on (then it says so and trains nothing).
/// </summary>
internal static class RequireTrainable
{
    private const string Advice = "use fewer or shorter harmful prompts, a larger --relative-threshold, or --null-space energy (or drop --official)";

    /// <summary>True when something can train; false (after the warning) when every adapter is frozen and that is allowed.</summary>
    public static bool Run(Session session, GuardedModel guarded)
    {
        if (guarded.TrainableParameters().Count > 0)
        {
            return true;
        }

        if (!session.Options.AllowFrozen)
        {
            throw new SampleFailure($"every adapter is frozen (no guarded layer has a null space), so nothing would train: {Advice}; or pass --allow-frozen to run anyway.");
        }

        AnsiConsole.MarkupLine($"[yellow]Every layer is frozen (no null space): nothing can train (--allow-frozen). To train, {Advice}.[/]");
        return false;
    }
}
