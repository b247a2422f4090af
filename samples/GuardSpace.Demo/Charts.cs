using ScottPlot;

namespace GuardSpace.Demo;

/// <summary>PNG charts with ScottPlot.</summary>
public static class Charts
{
    /// <summary>
    /// Harmful score against accuracy, one point per method (mean over seeds, bars one sd on both axes), with the
    /// Pareto frontier (no other method has both a lower harmful score and a higher accuracy) as a dashed line.
    /// </summary>
    public static string HarmfulVsAccuracy(string path, EvalResult aligned, IReadOnlyList<MethodResult> results)
    {
        var plt = new Plot();
        var palette = new ScottPlot.Palettes.Category20();
        int i = 0;
        var xs = new List<double> { aligned.Accuracy };
        var points = new List<(double X, double Y)>();
        foreach (var r in results)
        {
            var hs = r.Seeds.Select(s => s.HarmfulScore).ToList();
            var acc = r.Seeds.Select(s => s.Accuracy).ToList();
            double x = DemoRunner.Mean(acc), y = DemoRunner.Mean(hs);
            var color = palette.GetColor(i++);
            var eb = plt.Add.ErrorBar(new[] { x }, new[] { y }, new[] { DemoRunner.Sd(hs) });
            eb.XErrorPositive = eb.XErrorNegative = new[] { DemoRunner.Sd(acc) };
            eb.Color = color;
            var sc = plt.Add.Scatter(new[] { x }, new[] { y });
            sc.Color = color;
            sc.MarkerSize = 11;
            sc.LineWidth = 0;
            sc.LegendText = r.Method.Name;
            xs.Add(x);
            if (!double.IsNaN(x) && !double.IsNaN(y))
            {
                points.Add((x, y));
            }
        }

        var frontier = ParetoFrontier(points);
        if (frontier.Count > 1)
        {
            var line = plt.Add.Scatter(frontier.Select(p => p.X).ToArray(), frontier.Select(p => p.Y).ToArray());
            line.Color = Colors.Gray;
            line.LinePattern = LinePattern.Dashed;
            line.MarkerSize = 0;
            line.LegendText = "Pareto frontier";
        }

        var al = plt.Add.Scatter(new[] { aligned.Accuracy }, new[] { aligned.HarmfulScore });
        al.Color = Colors.Black;
        al.MarkerShape = MarkerShape.OpenDiamond;
        al.MarkerSize = 12;
        al.LineWidth = 0;
        al.LegendText = "aligned (before attack)";
        plt.Title("After the poisoned fine-tuning: harmful score vs task accuracy");
        plt.XLabel("task accuracy % (held-out multiplication problems)");
        plt.YLabel("harmful score % (held-out harmful requests)");
        plt.Axes.SetLimitsY(-5, 105);
        plt.Axes.SetLimitsX(Math.Max(0, xs.Where(v => !double.IsNaN(v)).Min() - 10), Math.Min(105, xs.Where(v => !double.IsNaN(v)).Max() + 10));
        plt.ShowLegend(Alignment.UpperLeft);
        plt.SavePng(path, 1000, 650);
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
