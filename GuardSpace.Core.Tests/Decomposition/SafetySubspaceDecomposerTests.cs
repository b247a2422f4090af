using GuardSpace.Decomposition;
using GuardSpace.Projection;
using GuardSpace.Tests.TestUtilities;
using MathNet.Numerics.LinearAlgebra;
using TorchSharp;
using static TorchSharp.torch;

namespace GuardSpace.Tests.Decomposition;

public class SafetySubspaceDecomposerTests
{
    public static TheoryData<int, int, int, int> Shapes => new()
    {
        { 24, 12, 3, 1 },  // tall
        { 10, 20, 4, 2 },  // wide
        { 16, 16, 5, 3 },  // square
        { 8, 12, 8, 4 },   // rank = min(m, n): the adapter holds everything
        { 30, 6, 1, 5 },   // rank 1
    };

    /// <summary>Invariants 2 and 3 against an independent MathNet float64 pipeline.</summary>
    [Theory]
    [MemberData(nameof(Shapes))]
    public void CovarianceSmallestMatchesFloat64Oracle(int m, int n, int r, int seed)
    {
        var w = Oracle.Random(m, n, seed);
        var c = Oracle.Covariance(3 * n, n, seed + 100);
        using var scope = NewDisposeScope();
        var decomposer = new SafetySubspaceDecomposer();
        using var result = decomposer.Decompose("layers.0.q_proj", Oracle.ToTensor(w), Oracle.ToTensor(c), r);

        // Damping rule: a well-conditioned covariance needs no doubling, so l is the official 0.01.
        Assert.Equal(0.01, result.Diagnostics.Damping, 15);
        Assert.Equal(0, result.Diagnostics.DampingDoublings);
        var lambda = 0.01 * c.Diagonal().Average();
        Assert.Equal(lambda, result.Diagnostics.DampingAbsolute, 1e-12 * lambda);

        // Oracle: SVD of W C_l, back-transform with a Cholesky solve.
        var cl = c + Matrix<double>.Build.DenseIdentity(n) * lambda;
        var svd = (w * cl).Svd(computeVectors: true);
        var k = Math.Min(m, n);
        var u = svd.U.SubMatrix(0, m, 0, k);
        var s = svd.S;
        var v = svd.VT.SubMatrix(0, k, 0, n).Transpose();
        var vHat = cl.Cholesky().Solve(v);

        // Reconstruction (invariant 2): U S V^^T = W, and the library's kept and adapter parts add up to W.
        var reconstructed = u * Matrix<double>.Build.DenseOfDiagonalVector(s.SubVector(0, k)) * vHat.Transpose();
        Assert.True(Oracle.RelativeError(reconstructed, w) <= 1e-10, "oracle reconstruction");
        var b0 = Oracle.ToMatrix(result.AdapterB);
        var a0 = Oracle.ToMatrix(result.AdapterA);
        var residual = Oracle.ToMatrix(result.Residual);
        Assert.True(Oracle.RelativeError(residual + b0 * a0, w) <= 1e-10, "residual + B0 A0 = W");

        // Spectrum equals the oracle's, descending.
        var spectrum = result.Diagnostics.SingularValues;
        Assert.Equal(k, spectrum.Count);
        for (var i = 0; i < k; i++)
        {
            Assert.True(Math.Abs(spectrum[i] - s[i]) <= 1e-10 * s[0], $"singular value {i}: {spectrum[i]} vs {s[i]}");
        }

        // Ordering (invariant 3): the adapter holds exactly the r smallest components.
        Assert.Equal(Enumerable.Range(k - r, r), result.Diagnostics.AdapterIndices);
        var expected = u.SubMatrix(0, m, k - r, r) * Matrix<double>.Build.DenseOfDiagonalVector(s.SubVector(k - r, r)) * vHat.SubMatrix(0, n, k - r, r).Transpose();
        Assert.True(Oracle.RelativeError(b0 * a0, expected) <= 1e-8, $"B0 A0 vs the r smallest components: {Oracle.RelativeError(b0 * a0, expected):G3}");

        // The factors are balanced: B0 = U_r sqrt(S_r) has column norms sqrt(s).
        for (var j = 0; j < r; j++)
        {
            Assert.Equal(Math.Sqrt(s[k - r + j]), b0.Column(j).L2Norm(), 1e-9 * Math.Sqrt(s[0]));
        }
    }

    [Theory]
    [InlineData(DecompositionMethod.CovarianceLargest)]
    [InlineData(DecompositionMethod.PlainLargest)]
    [InlineData(DecompositionMethod.PlainSmallest)]
    public void OtherMethodsSelectTheirComponents(DecompositionMethod method)
    {
        const int m = 14, n = 10, r = 3;
        var w = Oracle.Random(m, n, 7);
        var c = Oracle.Covariance(40, n, 8);
        using var scope = NewDisposeScope();
        var decomposer = new SafetySubspaceDecomposer(new SafetySubspaceOptions { Method = method });
        using var result = decomposer.Decompose("fc", Oracle.ToTensor(w), method.UsesCovariance() ? Oracle.ToTensor(c) : null, r);

        var target = method.UsesCovariance() ? w * (c + Matrix<double>.Build.DenseIdentity(n) * (0.01 * c.Diagonal().Average())) : w;
        var svd = target.Svd(true);
        var first = method.TakesSmallest() ? n - r : 0;
        var v = svd.VT.SubMatrix(first, r, 0, n).Transpose();
        if (method.UsesCovariance())
        {
            v = (c + Matrix<double>.Build.DenseIdentity(n) * (0.01 * c.Diagonal().Average())).Cholesky().Solve(v);
        }

        var expected = svd.U.SubMatrix(0, m, first, r) * Matrix<double>.Build.DenseOfDiagonalVector(svd.S.SubVector(first, r)) * v.Transpose();
        var product = Oracle.ToMatrix(result.AdapterB) * Oracle.ToMatrix(result.AdapterA);
        Assert.True(Oracle.RelativeError(product, expected) <= 1e-8, $"{method}: {Oracle.RelativeError(product, expected):G3}");
        Assert.True(Oracle.RelativeError(Oracle.ToMatrix(result.Residual) + product, w) <= 1e-10);
    }

    [Fact]
    public void ProjectedInitialisationKeepsTheLayerFunction()
    {
        const int m = 12, n = 16, r = 4;
        var w = Oracle.Random(m, n, 11);
        var c = Oracle.Covariance(50, n, 12);
        var harmfulX = Oracle.Random(5, n, 13); // 5 tokens < 16: an exact 11-dimensional null space
        using var scope = NewDisposeScope();
        using var projector = NullSpaceProjector.Fit("fc", Oracle.ToTensor(harmfulX.TransposeThisAndMultiply(harmfulX)));
        using var result = new SafetySubspaceDecomposer().Decompose("fc", Oracle.ToTensor(w), Oracle.ToTensor(c), r, projector);

        Assert.True(result.IsProjected);
        var a0 = Oracle.ToMatrix(result.AdapterA);
        var b0 = Oracle.ToMatrix(result.AdapterB);
        Assert.True((a0 * harmfulX.Transpose()).FrobeniusNorm() <= 1e-10 * a0.FrobeniusNorm(), "A0 = A0 P annihilates harmful activations");
        Assert.True(Oracle.RelativeError(Oracle.ToMatrix(result.Residual) + b0 * a0, w) <= 1e-10, "W' + B0 A0 P = W");
    }

    [Fact]
    public void IllConditionedCovarianceDoublesTheDamping()
    {
        const int n = 12;
        // Rank-2 covariance with a huge dynamic range: 0.01 * mean(diag) is not enough in float32.
        var x = Oracle.Random(2, n, 21);
        x.SetRow(0, x.Row(0) * 1e4);
        var c = x.TransposeThisAndMultiply(x);
        var logger = new RecordingLogger();
        using var scope = NewDisposeScope();
        var decomposer = new SafetySubspaceDecomposer(new SafetySubspaceOptions { ComputeType = ScalarType.Float32, DampingResidualTolerance = 1e-6 }, logger);
        using var result = decomposer.Decompose("mlp.up_proj", Oracle.ToTensor(Oracle.Random(6, n, 22)), Oracle.ToTensor(c), 2);
        Assert.True(result.Diagnostics.DampingDoublings > 0, "damping should have doubled");
        Assert.Equal(0.01 * Math.Pow(2, result.Diagnostics.DampingDoublings), result.Diagnostics.Damping, 12);
        Assert.True(result.Diagnostics.SolveResidual < 1e-6);
        Assert.Contains(logger.Entries, e => e.Message.Contains("mlp.up_proj") && e.Message.Contains("damping raised"));
    }

    [Theory]
    [InlineData(ScalarType.Float16)]
    [InlineData(ScalarType.BFloat16)]
    public void HalfPrecisionWeightsAreDecomposedInFloat64AndCastBack(ScalarType dtype)
    {
        const int m = 16, n = 12, r = 3;
        var w = Oracle.Random(m, n, 31);
        var c = Oracle.Covariance(40, n, 32);
        using var scope = NewDisposeScope();
        var halfWeight = Oracle.ToTensor(w).to_type(dtype);
        using var result = new SafetySubspaceDecomposer().Decompose("fc", halfWeight, Oracle.ToTensor(c), r);
        Assert.Equal(ScalarType.Float32, result.AdapterA.dtype); // factors over a half-precision weight stay float32
        Assert.Equal(ScalarType.Float32, result.AdapterB.dtype);
        Assert.Equal(dtype, result.Residual.dtype);

        // The maths ran on the rounded weight in float64: compare with the oracle on that same weight.
        var rounded = Oracle.ToMatrix(halfWeight);
        using var exact = new SafetySubspaceDecomposer().Decompose("fc", Oracle.ToTensor(rounded), Oracle.ToTensor(c), r);
        var tolerance = dtype == ScalarType.Float16 ? 2e-3 : 2e-2;
        Assert.True(Oracle.RelativeError(result.AdapterA, exact.AdapterA) <= tolerance);
        Assert.True(Oracle.RelativeError(result.Residual, exact.Residual) <= tolerance);
    }

    [Theory]
    [InlineData(0)]
    [InlineData(-1)]
    [InlineData(9)]
    public void RankOutOfRangeIsRejectedWithTheLayerName(int rank)
    {
        using var scope = NewDisposeScope();
        var ex = Assert.Throws<ArgumentOutOfRangeException>(() =>
            new SafetySubspaceDecomposer().Decompose("blocks.3.o_proj", randn(8, 10, dtype: ScalarType.Float64), eye(10, dtype: ScalarType.Float64), rank));
        Assert.Contains("blocks.3.o_proj", ex.Message);
        Assert.Contains("between 1 and min(out, in) = 8", ex.Message);
    }

    [Fact]
    public void CovarianceOfTheWrongShapeIsRejected()
    {
        using var scope = NewDisposeScope();
        var ex = Assert.Throws<ArgumentException>(() =>
            new SafetySubspaceDecomposer().Decompose("fc1", randn(8, 10, dtype: ScalarType.Float64), eye(8, dtype: ScalarType.Float64), 2));
        Assert.Contains("fc1", ex.Message);
        Assert.Contains("expected [10, 10]", ex.Message);
    }

    [Fact]
    public void AsymmetricCovarianceIsRejected()
    {
        using var scope = NewDisposeScope();
        var c = eye(10, dtype: ScalarType.Float64);
        c[0, 1] = tensor(0.5);
        var ex = Assert.Throws<ArgumentException>(() => new SafetySubspaceDecomposer().Decompose("fc1", randn(8, 10, dtype: ScalarType.Float64), c, 2));
        Assert.Contains("not symmetric", ex.Message);
        Assert.Contains("fc1", ex.Message);
    }

    [Theory]
    [InlineData(true, double.NaN)]
    [InlineData(true, double.PositiveInfinity)]
    [InlineData(false, double.NaN)]
    public void NonFiniteWeightsOrCovariancesAreRejected(bool inWeight, double bad)
    {
        using var scope = NewDisposeScope();
        var w = randn(8, 10, dtype: ScalarType.Float64);
        var c = eye(10, dtype: ScalarType.Float64);
        (inWeight ? w : c)[2, 2] = tensor(bad);
        var ex = Assert.Throws<ArgumentException>(() => new SafetySubspaceDecomposer().Decompose("blocks.1.v_proj", w, c, 2));
        Assert.Contains("blocks.1.v_proj", ex.Message);
        Assert.Contains(inWeight ? "the weight" : "the safety covariance", ex.Message);
    }

    [Fact]
    public void MissingOrZeroCovarianceIsExplained()
    {
        using var scope = NewDisposeScope();
        var w = randn(8, 10, dtype: ScalarType.Float64);
        var missing = Assert.Throws<ArgumentNullException>(() => new SafetySubspaceDecomposer().Decompose("fc", w, null, 2));
        Assert.Contains("ActivationCovarianceCollector", missing.Message);
        var zero = Assert.Throws<ArgumentException>(() => new SafetySubspaceDecomposer().Decompose("fc", w, zeros(10, 10, dtype: ScalarType.Float64), 2));
        Assert.Contains("no activation reached this layer", zero.Message);
    }

    [Fact]
    public void InvalidOptionsAreRejected()
    {
        Assert.Throws<ArgumentException>(() => new SafetySubspaceDecomposer(new SafetySubspaceOptions { ComputeType = ScalarType.Float16 }));
        Assert.Throws<ArgumentException>(() => new SafetySubspaceDecomposer(new SafetySubspaceOptions { InitialDamping = 0 }));
        Assert.Throws<ArgumentException>(() => new SafetySubspaceDecomposer(new SafetySubspaceOptions { DampingResidualTolerance = double.NaN }));
        Assert.Throws<ArgumentException>(() => new SafetySubspaceDecomposer(new SafetySubspaceOptions { MaxDampingDoublings = -1 }));
    }

    [Fact]
    public void CancellationIsHonoured()
    {
        using var scope = NewDisposeScope();
        using var cts = new CancellationTokenSource();
        cts.Cancel();
        Assert.Throws<OperationCanceledException>(() =>
            new SafetySubspaceDecomposer().Decompose("fc", randn(8, 10, dtype: ScalarType.Float64), eye(10, dtype: ScalarType.Float64), 2, cancellationToken: cts.Token));
    }
}
