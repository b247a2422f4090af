using System.Globalization;
using System.Text.Json;
using ScottPlot;

namespace GuardSpace.Demo;

/// <summary>
/// <c>pareto --out FILE.png [--title T] [--rename "LABEL=NEW"]... report.json[=tag] ...</c>: one harmful-score-vs-accuracy
/// chart over the method rows of several demo runs (for example an ablation split over runs), with the Pareto frontier,
/// and the same figures as a Markdown table on the console. Rows keep their run's numbers: nothing is re-measured;
/// <c>--rename</c> only relabels a row (for example a run's <c>GuardSpace</c> row made before the default changed).
/// </summary>
public static class ParetoChart
{
    private sealed record Point(string Label, double Accuracy, double AccuracySd, double Harmful, double HarmfulSd, int Seeds);

    public static int Run(IReadOnlyList<string> args)
    {
        string? output = null;
        var title = "Harmful score vs task accuracy";
        var points = new List<Point>();
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
                            points.Add(new Point(renames.GetValueOrDefault(label, label),
                                m.GetProperty("accuracy_mean").GetDouble(), m.GetProperty("accuracy_sd").GetDouble(),
                                m.GetProperty("harmful_score_mean").GetDouble(), m.GetProperty("harmful_score_sd").GetDouble(),
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

        var plt = new Plot();
        var palette = new ScottPlot.Palettes.Category20();
        var markers = new[] { MarkerShape.FilledCircle, MarkerShape.FilledSquare, MarkerShape.FilledTriangleUp, MarkerShape.FilledDiamond };
        for (var i = 0; i < points.Count; i++)
        {
            var p = points[i];
            var color = palette.GetColor(i % 20);
            var eb = plt.Add.ErrorBar(new[] { p.Accuracy }, new[] { p.Harmful }, new[] { p.HarmfulSd });
            eb.XErrorPositive = eb.XErrorNegative = new[] { p.AccuracySd };
            eb.Color = color;
            var sc = plt.Add.Scatter(new[] { p.Accuracy }, new[] { p.Harmful });
            sc.Color = color;
            sc.MarkerShape = markers[(i / 20) % markers.Length];
            sc.MarkerSize = 10;
            sc.LineWidth = 0;
            sc.LegendText = p.Label;
        }

        var frontier = Charts.ParetoFrontier(points.Select(p => (p.Accuracy, p.Harmful)).ToList());
        if (frontier.Count > 1)
        {
            var line = plt.Add.Scatter(frontier.Select(f => f.X).ToArray(), frontier.Select(f => f.Y).ToArray());
            line.Color = Colors.Gray;
            line.LinePattern = LinePattern.Dashed;
            line.MarkerSize = 0;
            line.LegendText = "Pareto frontier";
        }

        if (alignedHarmful is { } ah && alignedAccuracy is { } aa)
        {
            var al = plt.Add.Scatter(new[] { aa }, new[] { ah });
            al.Color = Colors.Black;
            al.MarkerShape = MarkerShape.OpenDiamond;
            al.MarkerSize = 12;
            al.LineWidth = 0;
            al.LegendText = "aligned (before attack)";
        }

        plt.Title(title);
        plt.XLabel("task accuracy % (held-out multiplication problems)");
        plt.YLabel("harmful score % (held-out harmful requests)");
        plt.Axes.SetLimitsY(-5, 105);
        plt.Axes.SetLimitsX(-5, 105);
        plt.ShowLegend(Alignment.UpperLeft);
        Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(output))!);
        plt.SavePng(output, 1100, 800);

        var ci = CultureInfo.InvariantCulture;
        Console.WriteLine("| method | harmful score % | accuracy % | seeds | on the frontier |");
        Console.WriteLine("|---|---:|---:|---:|:---:|");
        foreach (var p in points)
        {
            var onFrontier = frontier.Contains((p.Accuracy, p.Harmful)) ? "yes" : string.Empty;
            Console.WriteLine(string.Create(ci, $"| {p.Label} | {p.Harmful:F1} ± {p.HarmfulSd:F1} | {p.Accuracy:F1} ± {p.AccuracySd:F1} | {p.Seeds} | {onFrontier} |"));
        }

        Console.WriteLine($"wrote {output}");
        return 0;
    }
}
