using GuardSpace.Tests.TestUtilities;
using Xunit.Abstractions;

namespace GuardSpace.Tests.Fuzz;

/// <summary>
/// Seeded fuzzing of every loader that reads a user's file (docs/adapter-format.md, "Hostile files"): each case damages
/// one file of a valid folder and must end in a load or an allowed exception naming the folder, within the time and
/// allocation bounds of <see cref="FuzzRunner"/>. Failures listed in <see cref="LoaderTargets.KnownGaps"/> are counted
/// but do not fail the test.
/// </summary>
[Trait("Category", "Fuzz")]
public sealed class HostileFileTests(ITestOutputHelper output)
{
    /// <summary>Cases per loader; the same seeds every run.</summary>
    private const int CasesPerTarget = 500;

    public static TheoryData<string> Targets() => [.. LoaderTargets.All.Select(t => t.Name)];

    [Theory]
    [MemberData(nameof(Targets))]
    public void EveryDamagedFileLoadsOrIsRefusedClearly(string targetName)
    {
        var target = LoaderTargets.All.Single(t => t.Name == targetName);
        using var pristine = TempDirectory.Create("guardspace-fuzz-valid-");
        target.WriteValid(pristine);
        var valid = Directory.GetFiles(pristine).ToDictionary(f => Path.GetFileName(f), File.ReadAllBytes, StringComparer.Ordinal);
        Assert.All(target.Files, f => Assert.True(valid.ContainsKey(f), $"the valid folder lacks {f}"));

        using var work = TempDirectory.Create("guardspace-fuzz-case-");
        // The undamaged folder must load (or every refusal below means nothing); the second load, warm, is the allocation baseline.
        FuzzRunner.MeasureValidLoad(target, pristine);
        var baseline = FuzzRunner.MeasureValidLoad(target, pristine);
        var cases = CasesPerTarget / target.CostFactor;
        var outcomes = Enumerable.Range(0, cases).Select(i => FuzzRunner.Run(target, valid, baseline, work, i)).ToList();

        Report(target, outcomes, baseline);
        var failures = outcomes.Where(o => o.Failure is not null && !LoaderTargets.KnownGaps.Contains((o.Target, o.Mutation, o.Failure))).ToList();
        Assert.True(failures.Count == 0, string.Join(Environment.NewLine, failures.Take(5).Select(f => $"{f.Mutation} on {f.File} (seed {f.Seed}): {f.Failure}: {f.Detail}")));
    }

    private void Report(LoaderTarget target, List<FuzzOutcome> outcomes, long baseline)
    {
        output.WriteLine($"fuzz {target.Name}: {outcomes.Count} cases (allocation bound: 2 x {baseline} bytes of a valid load + 16 MiB + 32 x folder bytes)");
        foreach (var group in outcomes.GroupBy(Class).OrderBy(g => g.Key, StringComparer.Ordinal))
        {
            output.WriteLine($"fuzz {target.Name}:   {group.Key,-60} {group.Count(),5}");
        }

        var stale = LoaderTargets.KnownGaps.Where(g => g.Target == target.Name && !outcomes.Any(o => (o.Target, o.Mutation, o.Failure) == g)).ToList();
        stale.ForEach(g => output.WriteLine($"fuzz {target.Name}:   known gap not seen in this run (remove it?): {g.Mutation} / {g.Failure}"));
    }

    private static string Class(FuzzOutcome o) => o.Failure is null ? o.Class
        : LoaderTargets.KnownGaps.Contains((o.Target, o.Mutation, o.Failure)) ? $"known gap: {o.Mutation} / {o.Failure}"
        : $"FAILURE: {o.Mutation} / {o.Failure}";
}
