using System.Diagnostics;
using System.Globalization;

namespace GuardSpace.Benchmarks;

/// <summary>
/// <c>--paired-training [rounds]</c>: the GuardSpaceHook / PlainLora ratio measured by interleaving the two steps
/// (ABBA order per round) instead of BenchmarkDotNet's one-case-after-the-other, so that slow drifts of the machine's
/// load (other processes on a shared box) cancel. Reports the median and quartiles of the per-round ratios.
/// </summary>
public static class PairedTraining
{
    public static int Run(List<string> args)
    {
        var rounds = args.Select(a => int.TryParse(a, NumberStyles.Integer, CultureInfo.InvariantCulture, out var v) ? v : 0).FirstOrDefault(v => v > 0);
        rounds = rounds > 0 ? rounds : 20;
        Console.WriteLine($"| Rank | Rounds | PlainLora median (ms) | GuardSpaceHook median (ms) | Ratio median | Ratio Q1 | Ratio Q3 |");
        Console.WriteLine($"|-----:|-------:|----------------------:|---------------------------:|-------------:|---------:|---------:|");
        foreach (var rank in new[] { 16, 64 })
        {
            var plain = new TrainingStepBenchmarks { Rank = rank };
            var guarded = new TrainingStepBenchmarks { Rank = rank };
            plain.SetupPlain();
            guarded.SetupGuarded();
            for (var i = 0; i < 3; i++)
            {
                plain.PlainLora();
                guarded.GuardSpaceHook();
            }

            var ratios = new List<double>();
            var plainTimes = new List<double>();
            var guardTimes = new List<double>();
            for (var round = 0; round < rounds; round++)
            {
                // A B B A: a linear drift within the round cancels.
                var p1 = Time(plain.PlainLora);
                var g1 = Time(guarded.GuardSpaceHook);
                var g2 = Time(guarded.GuardSpaceHook);
                var p2 = Time(plain.PlainLora);
                plainTimes.Add((p1 + p2) / 2);
                guardTimes.Add((g1 + g2) / 2);
                ratios.Add((g1 + g2) / (p1 + p2));
            }

            plain.Cleanup();
            guarded.Cleanup();
            ratios.Sort();
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"| {rank} | {rounds} | {Median(plainTimes):F1} | {Median(guardTimes):F1} | {Median(ratios):F3} | {Quantile(ratios, 0.25):F3} | {Quantile(ratios, 0.75):F3} |"));
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
