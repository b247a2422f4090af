using ScottPlot;

namespace GuardSpace.Demo;

/// <summary>PNG charts with ScottPlot.</summary>
public static class Charts
{
    /// <summary>One method's point on the trade-off chart: means and sample sds over seeds.</summary>
    public sealed record TradeOffPoint(string Label, double Accuracy, double AccuracySd, double Harmful, double HarmfulSd);

    /// <summary>The trade-off chart of one run's methods (mean over seeds, bars one sd on both axes).</summary>
    public static string HarmfulVsAccuracy(string path, EvalResult aligned, IReadOnlyList<MethodResult> results, string scenario)
    {
        var points = results.Select(r =>
        {
            var hs = r.Seeds.Select(s => s.HarmfulScore).ToList();
            var acc = r.Seeds.Select(s => s.Accuracy).ToList();
            return new TradeOffPoint(r.Method.Name, Stats.Mean(acc), Stats.Sd(acc), Stats.Mean(hs), Stats.Sd(hs));
        }).ToList();
        return TradeOff(path, $"After the {scenario} fine-tuning: harmful score vs task accuracy", points, (aligned.Accuracy, aligned.HarmfulScore), fitAccuracyAxis: true);
    }

    /// <summary>
    /// Harmful score against accuracy, one point per method with its error bars, the Pareto frontier (no other point has
    /// both a lower harmful score and a higher accuracy) as a dashed line, and the aligned model before the attack.
    /// <paramref name="fitAccuracyAxis"/> fits the accuracy axis to the points; otherwise it spans 0 to 100.
    /// </summary>
    public static string TradeOff(string path, string title, IReadOnlyList<TradeOffPoint> points, (double Accuracy, double Harmful)? aligned, bool fitAccuracyAxis)
    {
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

        var frontier = ParetoFrontier(points.Where(p => !double.IsNaN(p.Accuracy) && !double.IsNaN(p.Harmful)).Select(p => (p.Accuracy, p.Harmful)).ToList());
        if (frontier.Count > 1)
        {
            var line = plt.Add.Scatter(frontier.Select(f => f.X).ToArray(), frontier.Select(f => f.Y).ToArray());
            line.Color = Colors.Gray;
            line.LinePattern = LinePattern.Dashed;
            line.MarkerSize = 0;
            line.LegendText = "Pareto frontier";
        }

        if (aligned is var (alignedAccuracy, alignedHarmful))
        {
            var al = plt.Add.Scatter(new[] { alignedAccuracy }, new[] { alignedHarmful });
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
        var xs = points.Select(p => p.Accuracy).Append(aligned?.Accuracy ?? double.NaN).Where(v => !double.IsNaN(v)).DefaultIfEmpty(0).ToList();
        if (fitAccuracyAxis)
        {
            plt.Axes.SetLimitsX(Math.Max(0, xs.Min() - 10), Math.Min(105, xs.Max() + 10));
        }
        else
        {
            plt.Axes.SetLimitsX(-5, 105);
        }

        plt.ShowLegend(Alignment.UpperLeft);
        Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(path))!);
        plt.SavePng(path, 1100, 800);
        return path;
    }

    /// <summary>The points no other point beats on both axes (higher accuracy and lower harmful score), by accuracy.</summary>
    public static List<(double X, double Y)> ParetoFrontier(IReadOnlyList<(double X, double Y)> points) =>
        points.Where(p => !points.Any(q => q.X >= p.X && q.Y <= p.Y && (q.X > p.X || q.Y < p.Y)))
            .OrderBy(p => p.X)
            .ToList();

    /// <summary>
    /// The safety monitor over the attack: the largest relative change of any guarded layer's output on the harmful
    /// calibration activations (mean over seeds), on a log scale, one line per method.
    /// </summary>
    public static string HarmfulDriftChart(string path, IReadOnlyList<MethodResult> results)
    {
        var plt = new Plot();
        var palette = new ScottPlot.Palettes.Category20();
        int i = 0;
        foreach (var r in results)
        {
            var color = palette.GetColor(i++);
            var steps = r.Seeds.SelectMany(s => s.Drift).GroupBy(d => d.Step).OrderBy(g => g.Key).ToList();
            if (steps.Count == 0)
            {
                continue;
            }

            var x = steps.Select(g => (double)g.Key).ToArray();
            var y = steps.Select(g => Math.Log10(Math.Max(g.Average(d => d.Max), 1e-12))).ToArray();
            var line = plt.Add.Scatter(x, y);
            line.Color = color;
            line.MarkerSize = 4;
            line.LegendText = r.Method.Name;
        }

        plt.Title("Safety monitor during the attack: largest harmful-output change of any guarded layer");
        plt.XLabel("attack step");
        plt.YLabel("log10 relative change ||dW C_h^(1/2)|| / ||W C_h^(1/2)||");
        plt.ShowLegend(Alignment.LowerRight);
        plt.SavePng(path, 1000, 650);
        return path;
    }

    /// <summary>
    /// The behaviour monitor over the attack: the refusal constraint's multiplier (mean over seeds), one line per constrained
    /// method and scenario; null when no method ran under the constraint.
    /// </summary>
    public static string? MultiplierChart(string path, IReadOnlyList<ScenarioResult> scenarios)
    {
        var plt = new Plot();
        var palette = new ScottPlot.Palettes.Category20();
        int i = 0;
        foreach (var sc in scenarios)
        {
            foreach (var r in sc.Methods)
            {
                var steps = r.Seeds.SelectMany(s => s.Behaviour).GroupBy(b => b.Step).OrderBy(g => g.Key).ToList();
                if (steps.Count == 0)
                {
                    continue;
                }

                var line = plt.Add.Scatter(steps.Select(g => (double)g.Key).ToArray(), steps.Select(g => g.Average(b => b.Multiplier)).ToArray());
                line.Color = palette.GetColor(i++);
                line.MarkerSize = 3;
                line.LegendText = $"{sc.Scenario.ToString().ToLowerInvariant()}: {r.Method.Name}";
            }
        }

        if (i == 0)
        {
            return null;
        }

        plt.Title("Behaviour monitor: the refusal constraint's multiplier during the attack (mean over seeds)");
        plt.XLabel("attack step");
        plt.YLabel("multiplier lambda");
        plt.ShowLegend(Alignment.UpperRight);
        plt.SavePng(path, 1000, 650);
        return path;
    }

    public static string SpectrumChart(string path, SpectrumData s)
    {
        var plt = new Plot();
        int k = s.SingularValues.Length;
        int frozen = Math.Max(0, k - s.Rank);
        double[] Log(IEnumerable<double> v) => v.Select(x => Math.Log10(Math.Max(x, 1e-30))).ToArray();
        var fx = Enumerable.Range(0, frozen).Select(i => (double)i).ToArray();
        var ax = Enumerable.Range(frozen, k - frozen).Select(i => (double)i).ToArray();
        var f = plt.Add.Scatter(fx, Log(s.SingularValues.Take(frozen)));
        f.LineWidth = 0;
        f.MarkerSize = 5;
        f.Color = Colors.SteelBlue;
        f.LegendText = $"frozen in the base weight ({frozen} largest)";
        var a = plt.Add.Scatter(ax, Log(s.SingularValues.Skip(frozen)));
        a.LineWidth = 0;
        a.MarkerSize = 7;
        a.Color = Colors.OrangeRed;
        a.LegendText = $"adapter (r = {s.Rank} smallest)";
        plt.Title($"Spectrum of W C_s, {s.Layer} (aligned model, {s.Tokens} calibration tokens)");
        plt.XLabel("component index (descending singular value)");
        plt.YLabel("log10 singular value");
        plt.ShowLegend(Alignment.UpperRight);
        plt.SavePng(path, 900, 600);
        return path;
    }
}
