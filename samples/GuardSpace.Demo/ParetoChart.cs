using System.Globalization;
using System.Text.Json;

namespace GuardSpace.Demo;

/// <summary>
/// <c>pareto --out FILE.png [--title T] [--rename "LABEL=NEW"]... report.json[=tag] ...</c>: one harmful-score-vs-accuracy
/// chart over the method rows of several demo runs (for example an ablation split over runs), with the Pareto frontier,
/// and the same figures as a Markdown table on the console. Rows keep their run's numbers: nothing is re-measured;
/// <c>--rename</c> only relabels a row (for example a run's <c>GuardSpace</c> row made before the default changed).
/// </summary>
public static class ParetoChart
{

    public static int Run(IReadOnlyList<string> args)
    {
        string? output = null;
        var title = "Harmful score vs task accuracy";
        var points = new List<(Charts.TradeOffPoint Point, int Seeds)>();
        var renames = new Dictionary<string, string>(StringComparer.Ordinal);
        double? alignedHarmful = null, alignedAccuracy = null;
        for (var i = 0; i < args.Count; i++)
        {
            switch (args[i])
            {
                case "--out": output = args[++i]; break;
                case "--title": title = args[++i]; break;
                case "--rename":
                    var pair = args[++i].Split('=', 2);
                    renames[pair[0]] = pair.Length == 2 ? pair[1] : throw new ArgumentException($"--rename needs LABEL=NEW; got {args[i]}");
                    break;
                default:
                    var (path, tag) = args[i].Split('=', 2) is [var p, var t] ? (p, t) : (args[i], null);
                    using (var doc = JsonDocument.Parse(File.ReadAllText(path)))
                    {
                        var root = doc.RootElement;
                        alignedHarmful ??= root.GetProperty("aligned").GetProperty("harmful_score").GetDouble();
                        alignedAccuracy ??= root.GetProperty("aligned").GetProperty("accuracy").GetDouble();
                        foreach (var m in root.GetProperty("methods").EnumerateArray())
                        {
                            var name = m.GetProperty("method").GetString()!;
                            var label = tag is null ? name : $"{name} [{tag}]";
                            points.Add((new Charts.TradeOffPoint(renames.GetValueOrDefault(label, label),
                                m.GetProperty("accuracy_mean").GetDouble(), m.GetProperty("accuracy_sd").GetDouble(),
                                m.GetProperty("harmful_score_mean").GetDouble(), m.GetProperty("harmful_score_sd").GetDouble()),
                                m.GetProperty("per_seed").GetArrayLength()));
                        }
                    }

                    break;
            }
        }

        if (output is null || points.Count == 0)
        {
            Console.Error.WriteLine("usage: pareto --out FILE.png [--title T] [--rename LABEL=NEW]... report.json[=tag] ...");
            return 2;
        }

        var aligned = alignedAccuracy is { } aa && alignedHarmful is { } ah ? (aa, ah) : ((double, double)?)null;
        Charts.TradeOff(output, title, [.. points.Select(p => p.Point)], aligned, fitAccuracyAxis: false);
        var frontier = Charts.ParetoFrontier([.. points.Select(p => (p.Point.Accuracy, p.Point.Harmful))]);

        var ci = CultureInfo.InvariantCulture;
        Console.WriteLine("| method | harmful score % | accuracy % | seeds | on the frontier |");
        Console.WriteLine("|---|---:|---:|---:|:---:|");
        foreach (var (p, seeds) in points)
        {
            var onFrontier = frontier.Contains((p.Accuracy, p.Harmful)) ? "yes" : string.Empty;
            Console.WriteLine(string.Create(ci, $"| {p.Label} | {p.Harmful:F1} ± {p.HarmfulSd:F1} | {p.Accuracy:F1} ± {p.AccuracySd:F1} | {seeds} | {onFrontier} |"));
        }

        Console.WriteLine($"wrote {output}");
        return 0;
    }
}
