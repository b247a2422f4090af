using System.Diagnostics;
using System.Globalization;

namespace GuardSpace.Benchmarks;

/// <summary>
/// <c>--paired-training [rounds]</c>: each guarded step's time over <see cref="TrainingStepBenchmarks.PlainLora"/>'s,
/// measured by interleaving the cases in a palindromic order per round (plain, g1, g2, ..., g2, g1, plain) instead of
/// BenchmarkDotNet's one-case-after-the-other, so that slow drifts of a shared machine's load cancel. Cases: the
/// library's default mode with exact null spaces (<see cref="TrainingStepBenchmarks.GuardSpaceHook"/>), the official
/// preset (<see cref="TrainingStepBenchmarks.GuardSpaceOfficialHook"/>), and the default mode where every layer falls
/// back to the energy rule so the drift penalty works on a full factor
/// (<see cref="TrainingStepBenchmarks.GuardSpaceFallbackHook"/>). Reports the median and quartiles of the per-round ratios.
/// </summary>
public static class PairedTraining
{
    public static int Run(List<string> args)
    {
        var rounds = args.Select(a => int.TryParse(a, NumberStyles.Integer, CultureInfo.InvariantCulture, out var v) ? v : 0).FirstOrDefault(v => v > 0);
        rounds = rounds > 0 ? rounds : 20;
        Console.WriteLine("| Rank | Case | Rounds | PlainLora median (ms) | Case median (ms) | Ratio median | Ratio Q1 | Ratio Q3 |");
        Console.WriteLine("|-----:|------|-------:|----------------------:|-----------------:|-------------:|---------:|---------:|");
        foreach (var rank in new[] { 16, 64 })
        {
            var plain = new TrainingStepBenchmarks { Rank = rank };
            plain.SetupPlain();
            var cases = new List<(string Name, TrainingStepBenchmarks Bench, Action Step)>();
            var defaultMode = new TrainingStepBenchmarks { Rank = rank };
            defaultMode.SetupLibraryDefault();
            cases.Add((nameof(TrainingStepBenchmarks.GuardSpaceHook), defaultMode, defaultMode.GuardSpaceHook));
            var official = new TrainingStepBenchmarks { Rank = rank };
            official.SetupLibraryOfficial();
            cases.Add((nameof(TrainingStepBenchmarks.GuardSpaceOfficialHook), official, official.GuardSpaceOfficialHook));
            var fallback = new TrainingStepBenchmarks { Rank = rank };
            fallback.SetupLibraryFallback();
            cases.Add((nameof(TrainingStepBenchmarks.GuardSpaceFallbackHook), fallback, fallback.GuardSpaceFallbackHook));
            for (var i = 0; i < 3; i++)
            {
                plain.PlainLora();
                cases.ForEach(c => c.Step());
            }

            var plainTimes = new List<double>();
            var times = cases.Select(_ => new List<double>()).ToList();
            var ratios = cases.Select(_ => new List<double>()).ToList();
            for (var round = 0; round < rounds; round++)
            {
                // plain, cases, reversed cases, plain: a linear drift within the round cancels.
                var p1 = Time(plain.PlainLora);
                var first = cases.Select(c => Time(c.Step)).ToList();
                var second = Enumerable.Reverse(cases).Select(c => Time(c.Step)).Reverse().ToList();
                var p2 = Time(plain.PlainLora);
                plainTimes.Add((p1 + p2) / 2);
                for (var c = 0; c < cases.Count; c++)
                {
                    times[c].Add((first[c] + second[c]) / 2);
                    ratios[c].Add((first[c] + second[c]) / (p1 + p2));
                }
            }

            plain.Cleanup();
            for (var c = 0; c < cases.Count; c++)
            {
                cases[c].Bench.Cleanup();
                var sorted = ratios[c].Order().ToList();
                Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"| {rank} | {cases[c].Name} | {rounds} | {Median(plainTimes):F1} | {Median(times[c]):F1} | {Quantile(sorted, 0.5):F3} | {Quantile(sorted, 0.25):F3} | {Quantile(sorted, 0.75):F3} |"));
            }
        }

        return 0;
    }

    private static double Time(Action step)
    {
        var sw = Stopwatch.StartNew();
        step();
        return sw.Elapsed.TotalMilliseconds;
    }

    private static double Median(List<double> values) => Quantile(values.Order().ToList(), 0.5);

    private static double Quantile(List<double> sorted, double q)
    {
        var pos = q * (sorted.Count - 1);
        var lo = (int)Math.Floor(pos);
        var hi = Math.Min(lo + 1, sorted.Count - 1);
        return sorted[lo] + (pos - lo) * (sorted[hi] - sorted[lo]);
    }
}
