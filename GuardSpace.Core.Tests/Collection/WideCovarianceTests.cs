using GuardSpace.Collection;
using GuardSpace.Targeting;
using GuardSpace.Tests.TestUtilities;
using MathNet.Numerics.LinearAlgebra;
using TorchSharp;
using static TorchSharp.torch;

namespace GuardSpace.Tests.Collection;

/// <summary>
/// Inputs wide enough (from <see cref="GramUpdate.MinimumBlockedWidth"/> on) that the collector forms only the block upper
/// triangle of each <c>X^T X</c> and mirrors it when the sum is read: the result must still be the float64 oracle's.
/// </summary>
public class WideCovarianceTests
{
    [Theory]
    [InlineData(300)]  // below the blocked width: one full product
    [InlineData(512)]  // exactly four block rows
    [InlineData(700)]  // a ragged last block row
    public void BlockUpperUpdateThenMirrorEqualsTheFullGram(int n)
    {
        var x1 = CollectionTestData.Randn(5, 37, n);
        var x2 = CollectionTestData.Randn(6, 23, n) * 2.0;
        using var sum = zeros(n, n, dtype: ScalarType.Float64);
        GramUpdate.AddUpper(sum, x1);
        GramUpdate.AddUpper(sum, x2);
        GramUpdate.MirrorUpper(sum);

        var a = CovarianceOracle.ToMatrix(x1);
        var b = CovarianceOracle.ToMatrix(x2);
        var expected = a.TransposeThisAndMultiply(a) + b.TransposeThisAndMultiply(b);
        Assert.True(CovarianceOracle.RelativeError(sum, expected) < 1e-14, $"n = {n}: {CovarianceOracle.RelativeError(sum, expected):G3}");
        var m = CovarianceOracle.ToMatrix(sum);
        var worst = Enumerable.Range(0, n).SelectMany(i => Enumerable.Range(0, n).Select(j => Math.Abs(m[i, j] - m[j, i]))).Max();
        Assert.True(worst <= 1e-12 * m.FrobeniusNorm(), $"asymmetry {worst:G3}");
    }

    /// <summary>Through the collector: both scalings, a token mask, float64 and float32 sums, snapshots taken mid-collection.</summary>
    [Theory]
    [InlineData(ActivationScaling.PerSampleMaxAbs, ScalarType.Float64)]
    [InlineData(ActivationScaling.None, ScalarType.Float64)]
    [InlineData(ActivationScaling.PerSampleMaxAbs, ScalarType.Float32)]
    public void WideLayerCovarianceEqualsTheFloat64Oracle(ActivationScaling scaling, ScalarType accumulation)
    {
        const int n = 600;
        using var model = WideModel(n);
        var x1 = CollectionTestData.Randn(21, 2, 9, n) * 3.0;
        var x2 = CollectionTestData.Randn(22, 1, 11, n);
        var mask = new bool[2, 9];
        for (var j = 0; j < 9; j++)
        {
            (mask[0, j], mask[1, j]) = (j % 3 != 0, j < 5);
        }

        var options = new CovarianceCollectionOptions { Scaling = scaling, AccumulationType = accumulation };
        using var collector = new ActivationCovarianceCollector(model, TargetModules.Suffixes("fc"), options);
        collector.SetTokenMask(MaskTensor(mask));
        model.call(x1);
        using var first = collector.ToCovarianceSet();  // a snapshot: the lower triangle is completed, collection goes on
        collector.SetTokenMask(null);
        model.call(x2);
        using var second = collector.ToCovarianceSet();

        var scaled = scaling == ActivationScaling.PerSampleMaxAbs;
        var oracleFirst = CovarianceOracle.Sum(CovarianceOracle.Samples(x1, mask), scaled, n);
        var oracleSecond = oracleFirst + CovarianceOracle.Sum(CovarianceOracle.Samples(x2), scaled, n);
        var tolerance = accumulation == ScalarType.Float64 ? 1e-13 : 1e-6;
        Assert.Equal(accumulation, second["fc"].Sum.dtype);
        Assert.True(CovarianceOracle.RelativeError(first["fc"].Sum, oracleFirst) < tolerance, $"first: {CovarianceOracle.RelativeError(first["fc"].Sum, oracleFirst):G3}");
        Assert.True(CovarianceOracle.RelativeError(second["fc"].Sum, oracleSecond) < tolerance, $"second: {CovarianceOracle.RelativeError(second["fc"].Sum, oracleSecond):G3}");
    }

    /// <summary>
    /// Scaling or masking an input already in the accumulation dtype must not change the caller's activations: the
    /// collector works on its scratch copy.
    /// </summary>
    [Theory]
    [InlineData(ScalarType.Float32, false)]
    [InlineData(ScalarType.Float64, false)]
    [InlineData(ScalarType.Float64, true)]
    public void ScalingLeavesTheCallersActivationsAlone(ScalarType dtype, bool masked)
    {
        const int n = 520;
        using var model = WideModel(n, dtype);
        var x = (CollectionTestData.Randn(31, 2, 6, n) * 5.0).to_type(dtype);
        var before = x.clone();
        var mask = new bool[2, 6];
        for (var j = 0; j < 6; j++)
        {
            (mask[0, j], mask[1, j]) = (!masked || j != 2, !masked || j < 4);
        }

        var options = new CovarianceCollectionOptions { Scaling = ActivationScaling.PerSampleMaxAbs, AccumulationType = dtype };
        using var collector = new ActivationCovarianceCollector(model, TargetModules.Suffixes("fc"), options);
        if (masked)
        {
            collector.SetTokenMask(MaskTensor(mask));
        }

        using var output = model.call(x);
        Assert.True(CovarianceOracle.BitEqual(before, x), "the input was changed");
        using var set = collector.ToCovarianceSet();
        var oracle = CovarianceOracle.Sum(CovarianceOracle.Samples(before.to_type(ScalarType.Float64), mask), perSampleMaxAbs: true, n);
        Assert.True(CovarianceOracle.RelativeError(set["fc"].Sum, oracle) < (dtype == ScalarType.Float32 ? 1e-6 : 1e-13));
    }

    /// <summary>
    /// One scratch buffer serves every layer and pass: inputs of different widths in one forward (600 and 40), and token
    /// counts that grow and shrink between passes, must each give the oracle's covariance.
    /// </summary>
    [Fact]
    public void ScratchReusedAcrossWidthsAndLengthsKeepsEveryCovarianceExact()
    {
        using var model = nn.Sequential(("wide", nn.Linear(600, 40, dtype: ScalarType.Float64)), ("narrow", nn.Linear(40, 3, dtype: ScalarType.Float64)));
        Tensor[] batches = [CollectionTestData.Randn(41, 1, 30, 600), CollectionTestData.Randn(42, 2, 50, 600) * 4.0, CollectionTestData.Randn(43, 1, 7, 600)];
        var hidden = batches.Select(x => ((nn.Module<Tensor, Tensor>)model[0]).call(x).detach()).ToArray(); // before any hook exists

        using var collector = new ActivationCovarianceCollector(model, TargetModules.Suffixes("wide", "narrow"));
        foreach (var x in batches)
        {
            using var y = model.call(x);
        }

        using var set = collector.ToCovarianceSet();
        var wide = batches.Select(x => CovarianceOracle.Sum(CovarianceOracle.Samples(x), perSampleMaxAbs: true, 600)).Aggregate((a, b) => a + b);
        var narrow = hidden.Select(h => CovarianceOracle.Sum(CovarianceOracle.Samples(h), perSampleMaxAbs: true, 40)).Aggregate((a, b) => a + b);
        Assert.Equal(30 + 100 + 7, set["wide"].TokenCount);
        Assert.True(CovarianceOracle.RelativeError(set["wide"].Sum, wide) < 1e-13, $"wide: {CovarianceOracle.RelativeError(set["wide"].Sum, wide):G3}");
        Assert.True(CovarianceOracle.RelativeError(set["narrow"].Sum, narrow) < 1e-13, $"narrow: {CovarianceOracle.RelativeError(set["narrow"].Sum, narrow):G3}");
    }

    private static nn.Module<Tensor, Tensor> WideModel(int n, ScalarType dtype = ScalarType.Float64) =>
        nn.Sequential(("fc", nn.Linear(n, 3, dtype: dtype)));

    private static Tensor MaskTensor(bool[,] mask)
    {
        var (b, s) = (mask.GetLength(0), mask.GetLength(1));
        var flat = new bool[b * s];
        for (var i = 0; i < b; i++)
        {
            for (var j = 0; j < s; j++)
            {
                flat[(i * s) + j] = mask[i, j];
            }
        }

        return tensor(flat).reshape(b, s);
    }
}
