using ScottPlot;

namespace GuardSpace.Demo;

/// <summary>PNG charts with ScottPlot.</summary>
public static class Charts
{
    public static string HarmfulVsAccuracy(string path, EvalResult aligned, IReadOnlyList<MethodResult> results)
    {
        var plt = new Plot();
        var palette = new ScottPlot.Palettes.Category10();
        int i = 0;
        var xs = new List<double> { aligned.Accuracy };
        foreach (var r in results)
        {
            var hs = r.Seeds.Select(s => s.HarmfulScore).ToList();
            var acc = r.Seeds.Select(s => s.Accuracy).ToList();
            double x = DemoRunner.Mean(acc), y = DemoRunner.Mean(hs);
            var color = palette.GetColor(i++);
            var eb = plt.Add.ErrorBar(new[] { x }, new[] { y }, new[] { DemoRunner.Sd(hs) });
            eb.Color = color;
            var sc = plt.Add.Scatter(new[] { x }, new[] { y });
            sc.Color = color;
            sc.MarkerSize = 11;
            sc.LineWidth = 0;
            sc.LegendText = r.Method.Name;
            xs.Add(x);
        }

        var al = plt.Add.Scatter(new[] { aligned.Accuracy }, new[] { aligned.HarmfulScore });
        al.Color = Colors.Black;
        al.MarkerShape = MarkerShape.OpenDiamond;
        al.MarkerSize = 12;
        al.LineWidth = 0;
        al.LegendText = "aligned (before attack)";
        plt.Title("After the poisoned fine-tuning: harmful score vs task accuracy");
        plt.XLabel("task accuracy % (held-out arithmetic)");
        plt.YLabel("harmful score % (held-out harmful requests)");
        plt.Axes.SetLimitsY(-5, 105);
        plt.Axes.SetLimitsX(Math.Max(0, xs.Min() - 10), Math.Min(100, xs.Max() + 10));
        plt.ShowLegend(Alignment.MiddleLeft);
        plt.SavePng(path, 900, 600);
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
