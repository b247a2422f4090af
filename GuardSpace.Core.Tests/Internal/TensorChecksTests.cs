using GuardSpace.Internal;
using TorchSharp;
using static TorchSharp.torch;

namespace GuardSpace.Tests.Internal;

public class TensorChecksTests
{
    /// <summary>The blocked asymmetry scan sees every entry: it equals max |C - C^T| over sizes around its block width.</summary>
    [Theory]
    [InlineData(1, ScalarType.Float64)]
    [InlineData(127, ScalarType.Float32)]
    [InlineData(128, ScalarType.Float64)]
    [InlineData(129, ScalarType.Float32)]
    [InlineData(300, ScalarType.Float64)]
    public void MaxAsymmetryEqualsTheDenseReference(int n, ScalarType dtype)
    {
        using var scope = NewDisposeScope();
        var generator = new Generator((ulong)n, CPU);
        var s = randn(n, n, dtype: ScalarType.Float64, generator: generator);
        s = s + s.T;
        // One asymmetric entry per position tried, the largest last: the scan must find it wherever it sits.
        foreach (var (i, j) in new[] { (0, n - 1), (n - 1, 0), (n / 2, n / 3), (n - 1, n - 1) })
        {
            var m = s.clone();
            m[i, j] = m[i, j] + 7.5;
            var c = m.to_type(dtype);
            var reference = (c.to_type(ScalarType.Float64) - c.to_type(ScalarType.Float64).T).abs().max().ToDouble();
            Assert.Equal(reference, TensorChecks.MaxAsymmetry(c), 6);
        }

        Assert.Equal(0.0, TensorChecks.MaxAsymmetry(s.to_type(dtype)));
    }

    /// <summary>A covariance asymmetric within the tolerance is symmetrised before eigh: the projector is the symmetrised matrix's.</summary>
    [Fact]
    public void SlightlyAsymmetricCovarianceIsSymmetrisedBeforeTheFit()
    {
        using var scope = NewDisposeScope();
        var x = randn(40, 12, dtype: ScalarType.Float64, generator: new Generator(9, CPU));
        var c = x.T.mm(x);
        var skew = triu(randn(12, 12, dtype: ScalarType.Float64, generator: new Generator(10, CPU)), 1) * (1e-8 * c.abs().max().ToDouble());
        var slightly = c + skew;                                              // only the upper triangle moves
        var options = new GuardSpace.Projection.NullSpaceOptions { Rule = GuardSpace.Projection.NullSpaceThresholdRule.EnergyFraction, EnergyFraction = 0.7 };
        using var fitted = GuardSpace.Projection.NullSpaceProjector.Fit("fc", slightly, options);
        using var reference = GuardSpace.Projection.NullSpaceProjector.Fit("fc", (slightly + slightly.T) * 0.5, options);
        Assert.InRange(fitted.NullDimension, 1, 11);
        var probe = randn(3, 12, dtype: ScalarType.Float64, generator: new Generator(11, CPU));
        var difference = (fitted.ProjectRows(probe) - reference.ProjectRows(probe)).abs().max().ToDouble();
        Assert.True(difference < 1e-12, $"projector differs from the symmetrised matrix's by {difference:G3}");
    }

    [Fact]
    public void AsymmetryInALaterBlockIsRefused()
    {
        using var scope = NewDisposeScope();
        var c = eye(300, dtype: ScalarType.Float32);
        c[250, 140] = tensor(0.5f);
        var error = Assert.Throws<ArgumentException>(() => TensorChecks.ThrowIfNotSymmetric(c, "mlp.down", "the safety covariance"));
        Assert.Contains("'mlp.down'", error.Message);
        Assert.Contains("not symmetric", error.Message);
    }

    /// <summary>The one-sum screen never lets a NaN or infinity through, and an overflowing sum of finite values is no error.</summary>
    [Fact]
    public void NonFiniteScreenIsExact()
    {
        using var scope = NewDisposeScope();
        var huge = full(4, 4, 3e38f, dtype: ScalarType.Float32);              // the sum overflows, every entry is finite
        TensorChecks.ThrowIfNonFinite(huge, "fc", "the weight", "fix");
        foreach (var bad in new[] { float.NaN, float.PositiveInfinity, float.NegativeInfinity })
        {
            var t = ones(300, 7, dtype: ScalarType.Float32);
            t[299, 6] = tensor(bad);
            var error = Assert.Throws<ArgumentException>(() => TensorChecks.ThrowIfNonFinite(t, "fc", "the weight", "fix"));
            Assert.Contains(float.IsNaN(bad) ? "1 NaN" : "1 infinite", error.Message);
        }

        var mixed = ones(10, dtype: ScalarType.Float64);
        mixed[2] = tensor(double.PositiveInfinity);
        mixed[3] = tensor(double.NegativeInfinity);                             // inf - inf: NaN sum
        Assert.Throws<ArgumentException>(() => TensorChecks.ThrowIfNonFinite(mixed, "fc", "x", "fix"));
    }
}
