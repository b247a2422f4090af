namespace GuardSpace.Demo;

/// <summary>Mean and sample standard deviation over seeds.</summary>
public static class Stats
{
    public static double Mean(IEnumerable<double> xs) => xs.DefaultIfEmpty(double.NaN).Average();

    public static double Sd(IEnumerable<double> xs)
    {
        var l = xs.ToList();
        if (l.Count < 2)
        {
            return 0;
        }

        var m = l.Average();
        return Math.Sqrt(l.Sum(x => (x - m) * (x - m)) / (l.Count - 1));
    }
}
