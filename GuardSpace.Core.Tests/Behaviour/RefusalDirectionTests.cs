using GuardSpace.Behaviour;
using static TorchSharp.torch;

namespace GuardSpace.Tests.Behaviour;

public class RefusalDirectionTests
{
    [Fact]
    public void DirectionAndScoresMatchAFloat64Oracle()
    {
        using var scope = NewDisposeScope();
        var rng = new Random(4);
        double[][] Rows(int n, double shift) => [.. Enumerable.Range(0, n).Select(_ => Enumerable.Range(0, 5).Select(j => rng.NextDouble() + (j == 1 ? shift : 0)).ToArray())];
        var harmful = Rows(7, 3.0);
        var benign = Rows(9, -1.0);
        var probe = Rows(4, 0.5);
        Tensor T(double[][] rows) => tensor(rows.SelectMany(r => r).ToArray(), [rows.Length, 5]).to_type(ScalarType.Float32);

        using var direction = RefusalDirection.Fit(T(harmful), T(benign));
        var scores = direction.Score(T(probe));

        // Oracle from the float32-rounded values, in plain float64 arithmetic.
        double[][] Rounded(double[][] rows) => [.. rows.Select(r => r.Select(v => (double)(float)v).ToArray())];
        double[] Mean(double[][] rows) => [.. Enumerable.Range(0, 5).Select(j => rows.Average(r => r[j]))];
        var (mh, mb) = (Mean(Rounded(harmful)), Mean(Rounded(benign)));
        var d = mh.Zip(mb, (a, b) => a - b).ToArray();
        var norm = Math.Sqrt(d.Sum(v => v * v));
        var expected = Rounded(probe).Select(x => Enumerable.Range(0, 5).Sum(j => (x[j] - ((mh[j] + mb[j]) / 2)) * d[j] / norm)).ToArray();

        Assert.Equal(5, direction.Width);
        for (var i = 0; i < expected.Length; i++)
        {
            Assert.Equal(expected[i], scores[i], 12);
        }

        Assert.True(direction.Score(T(harmful)).All(s => s > 0));
        Assert.True(direction.Score(T(benign)).All(s => s < 0));
        Assert.Empty(direction.Score(zeros(0, 5)));
    }

    [Fact]
    public void BadFeaturesGetClearErrors()
    {
        using var scope = NewDisposeScope();
        var ok = ones(3, 4);
        Assert.Contains("[rows > 0, 4]", Assert.Throws<ArgumentException>(() => RefusalDirection.Fit(ok, ones(2, 5))).Message, StringComparison.Ordinal);
        Assert.Contains("harmful calibration features must be", Assert.Throws<ArgumentException>(() => RefusalDirection.Fit(zeros(0, 4), ok)).Message, StringComparison.Ordinal);
        Assert.Contains("NaN or Inf", Assert.Throws<ArgumentException>(() => RefusalDirection.Fit(full(3, 4, double.NaN), ok)).Message, StringComparison.Ordinal);
        Assert.Contains("same mean", Assert.Throws<ArgumentException>(() => RefusalDirection.Fit(ok, ones(5, 4))).Message, StringComparison.Ordinal);
        using var direction = RefusalDirection.Fit(ok, zeros(2, 4));
        Assert.Contains("[prompts, 4]", Assert.Throws<ArgumentException>(() => direction.Score(ones(2, 3))).Message, StringComparison.Ordinal);
    }
}
