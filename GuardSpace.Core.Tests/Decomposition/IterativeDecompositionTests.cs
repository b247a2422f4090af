using GuardSpace.Decomposition;
using GuardSpace.Tests.TestUtilities;
using MathNet.Numerics.LinearAlgebra;
using Microsoft.Extensions.Logging;
using TorchSharp;
using static TorchSharp.torch;

namespace GuardSpace.Tests.Decomposition;

/// <summary>
/// The iterative solver (<see cref="DecompositionSolver.Iterative"/>) against the same MathNet float64 oracle and the same
/// tolerances as the full-SVD tests in <see cref="SafetySubspaceDecomposerTests"/>: invariants 2 and 3, the fallback to
/// the full SVD, and the Auto rule.
/// </summary>
public class IterativeDecompositionTests
{
    private const int FallbackEventId = 202;

    public static TheoryData<int, int, int, int, DecompositionMethod> Shapes => new()
    {
        { 40, 24, 3, 1, DecompositionMethod.CovarianceSmallest },  // tall
        { 24, 40, 4, 2, DecompositionMethod.CovarianceSmallest },  // wide
        { 32, 32, 5, 3, DecompositionMethod.CovarianceSmallest },  // square (the LU path)
        { 28, 28, 3, 10, DecompositionMethod.PlainSmallest },      // square, no covariance
        { 60, 20, 1, 4, DecompositionMethod.CovarianceSmallest },  // rank 1
        { 20, 60, 2, 5, DecompositionMethod.CovarianceSmallest },  // very wide
        { 40, 24, 3, 6, DecompositionMethod.CovarianceLargest },
        { 24, 40, 4, 7, DecompositionMethod.CovarianceLargest },
        { 36, 28, 4, 8, DecompositionMethod.PlainSmallest },
        { 28, 36, 4, 9, DecompositionMethod.PlainLargest },
    };

    /// <summary>Invariants 2 and 3 on the iterative path, for both ends of the spectrum and both orientations.</summary>
    [Theory]
    [MemberData(nameof(Shapes))]
    public void IterativeSolverMatchesFloat64Oracle(int m, int n, int r, int seed, DecompositionMethod method)
    {
        var w = Oracle.Random(m, n, seed);
        var c = Oracle.Covariance(3 * n, n, seed + 100);
        using var scope = NewDisposeScope();
        using var result = Decompose(method, w, c, r);
        AssertIterative(result);
        AssertMatchesOracle(result, w, c, r, method);
    }

    /// <summary>A prescribed spectrum <c>W C_l = Z</c>: clustered values (relative spacing 1e-9) inside the adapter's block.</summary>
    [Theory]
    [InlineData(DecompositionMethod.CovarianceSmallest, 30, 24)]
    [InlineData(DecompositionMethod.CovarianceSmallest, 24, 24)]
    [InlineData(DecompositionMethod.CovarianceLargest, 30, 24)]
    public void ClusteredSingularValuesInsideTheAdapterAreExact(DecompositionMethod method, int m, int n)
    {
        const int r = 4;
        // Descending spectrum; the adapter's 4 values are a tight cluster, well separated from the rest.
        var spectrum = Enumerable.Range(0, n).Select(i => 10.0 * Math.Pow(0.85, i)).ToArray();
        var cluster = method.TakesSmallest() ? n - r : 0;
        var level = method.TakesSmallest() ? 1e-3 : 50.0;
        for (var i = 0; i < r; i++)
        {
            spectrum[cluster + i] = level * (1 + (r - i) * 1e-9);
        }

        var (w, c) = WithSpectrum(m, n, spectrum, 41);
        using var scope = NewDisposeScope();
        using var result = Decompose(method, w, c, r);
        AssertIterative(result);
        AssertMatchesOracle(result, w, c, r, method);
        AssertAdapterProduct(result, w, c, spectrum, m, n, r, method, 61);
    }

    /// <summary>Exactly repeated values inside the adapter's block: the subspace is still unique, so is <c>B0 A0</c>.</summary>
    [Theory]
    [InlineData(DecompositionMethod.CovarianceSmallest, 36, 20)]
    [InlineData(DecompositionMethod.CovarianceSmallest, 20, 36)]
    [InlineData(DecompositionMethod.CovarianceSmallest, 20, 20)]
    [InlineData(DecompositionMethod.CovarianceLargest, 36, 20)]
    public void ExactlyRepeatedSingularValuesInsideTheAdapterAreExact(DecompositionMethod method, int m, int n)
    {
        const int r = 3;
        var k = Math.Min(m, n);
        var spectrum = Enumerable.Range(0, k).Select(i => 5.0 * Math.Pow(0.8, i)).ToArray();
        var block = method.TakesSmallest() ? k - r : 0;
        for (var i = 0; i < r; i++)
        {
            spectrum[block + i] = method.TakesSmallest() ? 1e-3 : 20.0;
        }

        var (w, c) = WithSpectrum(m, n, spectrum, 43);
        using var scope = NewDisposeScope();
        using var result = Decompose(method, w, c, r);
        AssertIterative(result);
        AssertAdapterProduct(result, w, c, spectrum, m, n, r, method, 61);
    }

    /// <summary>
    /// A value repeated across the boundary (s_r = s_{r+1}) leaves the adapter's subspace ill-defined: the solver must
    /// say so and fall back to the full SVD, whose result is still an exact split of W with the r smallest values.
    /// </summary>
    [Fact]
    public void RepeatedValueAcrossTheBoundaryFallsBackToTheFullSvd()
    {
        const int m = 30, n = 24, r = 3;
        var spectrum = Enumerable.Range(0, n).Select(i => 5.0 * Math.Pow(0.8, i)).ToArray();
        spectrum[n - r] = spectrum[n - r - 1]; // s_r = s_{r+1} counted from the small end
        var (w, c) = WithSpectrum(m, n, spectrum, 47);
        var logs = new RecordingLoggerFactory();
        using var scope = NewDisposeScope();
        var decomposer = new SafetySubspaceDecomposer(new SafetySubspaceOptions { Solver = DecompositionSolver.Iterative }, logs.CreateLogger("test"));
        using var result = decomposer.Decompose("layers.2.v_proj", Oracle.ToTensor(w), Oracle.ToTensor(c), r);
        AssertFellBack(result, logs.Logger, "layers.2.v_proj", "too close");
        AssertMatchesOracle(result, w, c, r, DecompositionMethod.CovarianceSmallest, checkProduct: false);
    }

    /// <summary>An ill-conditioned, singular covariance (8 tokens for width 32, scales over 6 orders of magnitude).</summary>
    [Theory]
    [InlineData(40, 32)]
    [InlineData(24, 32)]
    [InlineData(32, 32)]
    public void IllConditionedCovarianceMatchesFloat64Oracle(int m, int n)
    {
        const int r = 4;
        var x = Oracle.Random(8, n, 51);
        for (var i = 0; i < x.RowCount; i++)
        {
            x.SetRow(i, x.Row(i) * Math.Pow(10, 3 - i * 6.0 / (x.RowCount - 1)));
        }

        var c = x.TransposeThisAndMultiply(x);
        var w = Oracle.Random(m, n, 52);
        using var scope = NewDisposeScope();
        using var result = Decompose(DecompositionMethod.CovarianceSmallest, w, c, r);
        AssertIterative(result);
        AssertMatchesOracle(result, w, c, r, DecompositionMethod.CovarianceSmallest);
    }

    /// <summary>Too few iterations or an unreachable tolerance: the solver gives up, logs it, and the full SVD answers exactly.</summary>
    [Theory]
    [InlineData(1, 1e-13, "not converged after 1 iterations")]
    [InlineData(100, 1e-30, "not converged after 100 iterations")]
    public void NonConvergenceFallsBackToTheFullSvd(int maxIterations, double tolerance, string reason)
    {
        const int m = 40, n = 24, r = 3;
        var w = Oracle.Random(m, n, 61);
        var c = Oracle.Covariance(3 * n, n, 62);
        var logs = new RecordingLoggerFactory();
        using var scope = NewDisposeScope();
        var options = new SafetySubspaceOptions { Solver = DecompositionSolver.Iterative, IterativeMaxIterations = maxIterations, IterativeTolerance = tolerance };
        using var result = new SafetySubspaceDecomposer(options, logs.CreateLogger("test")).Decompose("blocks.0.q_proj", Oracle.ToTensor(w), Oracle.ToTensor(c), r);
        AssertFellBack(result, logs.Logger, "blocks.0.q_proj", reason);
        Assert.Equal(maxIterations, result.Diagnostics.SolverIterations);
        AssertMatchesOracle(result, w, c, r, DecompositionMethod.CovarianceSmallest);
    }

    /// <summary>
    /// A singular weight (two zero columns, no covariance) makes the factorisation's pivot zero; a numerically singular one
    /// (two columns scaled by 1e-200) overflows the first inverse step. Either way the solver must report it and fall back,
    /// not throw, and the full SVD still splits W exactly.
    /// </summary>
    [Theory]
    [InlineData(24, 24, 0.0, "zero pivot")]
    [InlineData(40, 24, 0.0, "zero pivot")]
    [InlineData(24, 24, 1e-200, "non-finite")]
    [InlineData(40, 24, 1e-200, "non-finite")]
    public void SingularWeightFallsBackToTheFullSvd(int m, int n, double scale, string reason)
    {
        const int r = 2;
        var w = Oracle.Random(m, n, 81);
        w.SetColumn(3, w.Column(3) * scale);
        w.SetColumn(17, w.Column(17) * scale);
        var logs = new RecordingLoggerFactory();
        using var scope = NewDisposeScope();
        var options = new SafetySubspaceOptions { Method = DecompositionMethod.PlainSmallest, Solver = DecompositionSolver.Iterative };
        using var result = new SafetySubspaceDecomposer(options, logs.CreateLogger("test")).Decompose("layers.1.o_proj", Oracle.ToTensor(w), null, r);
        AssertFellBack(result, logs.Logger, "layers.1.o_proj", reason);

        // The adapter holds the two zero components: B0 A0 = 0 to rounding, the residual is W.
        var spectrum = result.Diagnostics.SingularValues;
        var product = Oracle.ToMatrix(result.AdapterB) * Oracle.ToMatrix(result.AdapterA);
        Assert.True(spectrum[^1] <= 1e-12 * spectrum[0] && spectrum[^2] <= 1e-12 * spectrum[0], $"smallest values {spectrum[^2]:G3}, {spectrum[^1]:G3}");
        Assert.True(product.FrobeniusNorm() <= 1e-12 * w.FrobeniusNorm(), $"||B0 A0|| = {product.FrobeniusNorm():G3}");
        Assert.True(Oracle.RelativeError(Oracle.ToMatrix(result.Residual) + product, w) <= 1e-10, "residual + B0 A0 = W");
    }

    /// <summary>Auto: iterative for the smallest-end methods when min(m, n) &gt;= 512, r &lt;= min(m, n) / 32 and max(m, n) &lt;= 1.5 min(m, n); the full SVD otherwise.</summary>
    [Theory]
    [InlineData(600, 512, 16, DecompositionMethod.CovarianceSmallest, DecompositionSolver.Iterative)]
    [InlineData(512, 600, 16, DecompositionMethod.PlainSmallest, DecompositionSolver.Iterative)]
    [InlineData(600, 512, 17, DecompositionMethod.CovarianceSmallest, DecompositionSolver.FullSvd)]
    [InlineData(511, 600, 4, DecompositionMethod.CovarianceSmallest, DecompositionSolver.FullSvd)]
    [InlineData(4096, 4096, 16, DecompositionMethod.CovarianceSmallest, DecompositionSolver.Iterative)]
    [InlineData(6144, 4096, 128, DecompositionMethod.CovarianceSmallest, DecompositionSolver.Iterative)]
    [InlineData(6144, 4096, 129, DecompositionMethod.CovarianceSmallest, DecompositionSolver.FullSvd)]
    [InlineData(768, 512, 16, DecompositionMethod.CovarianceSmallest, DecompositionSolver.Iterative)]
    [InlineData(769, 512, 16, DecompositionMethod.CovarianceSmallest, DecompositionSolver.FullSvd)]
    [InlineData(512, 769, 16, DecompositionMethod.PlainSmallest, DecompositionSolver.FullSvd)]
    [InlineData(11008, 4096, 16, DecompositionMethod.CovarianceSmallest, DecompositionSolver.FullSvd)]
    [InlineData(4096, 11008, 16, DecompositionMethod.CovarianceSmallest, DecompositionSolver.FullSvd)]
    [InlineData(4096, 4096, 16, DecompositionMethod.CovarianceLargest, DecompositionSolver.FullSvd)]
    [InlineData(4096, 4096, 16, DecompositionMethod.PlainLargest, DecompositionSolver.FullSvd)]
    public void AutoRuleChoosesByMethodSizeAndRank(int m, int n, int r, DecompositionMethod method, DecompositionSolver expected)
    {
        Assert.Equal(expected, SafetySubspaceDecomposer.ChooseSolver(DecompositionSolver.Auto, method, m, n, r));
        Assert.Equal(DecompositionSolver.FullSvd, SafetySubspaceDecomposer.ChooseSolver(DecompositionSolver.FullSvd, method, m, n, r));
        Assert.Equal(DecompositionSolver.Iterative, SafetySubspaceDecomposer.ChooseSolver(DecompositionSolver.Iterative, method, m, n, r));
    }

    /// <summary>By default (Auto) a 600 x 512 layer with r = 16 takes the iterative path, and the result is the oracle's.</summary>
    [Fact]
    public void DefaultOptionsTakeTheIterativePathWhenTheRuleSaysSo()
    {
        const int m = 600, n = 512, r = 16;
        var w = Oracle.Random(m, n, 71);
        var c = Oracle.Covariance(2 * n, n, 72);
        using var scope = NewDisposeScope();
        var decomposer = new SafetySubspaceDecomposer();
        Assert.Equal(DecompositionSolver.Auto, decomposer.Options.Solver);
        using var result = decomposer.Decompose("fc", Oracle.ToTensor(w), Oracle.ToTensor(c), r);
        AssertIterative(result);
        AssertMatchesOracle(result, w, c, r, DecompositionMethod.CovarianceSmallest);

        // Below the rule's size the default is the full SVD, which reports every singular value.
        using var small = decomposer.Decompose("fc", Oracle.ToTensor(Oracle.Random(24, 12, 73)), Oracle.ToTensor(Oracle.Covariance(36, 12, 74)), 1);
        Assert.Equal(DecompositionSolver.FullSvd, small.Diagnostics.Solver);
        Assert.All(small.Diagnostics.SingularValues, v => Assert.True(double.IsFinite(v)));
    }

    [Fact]
    public void InvalidSolverOptionsAreRejected()
    {
        var ex = Assert.Throws<ArgumentException>(() => new SafetySubspaceDecomposer(new SafetySubspaceOptions
        {
            Solver = (DecompositionSolver)7,
            IterativeTolerance = 0,
            IterativeMaxIterations = 0,
        }));
        Assert.Equal("Solver", ex.ParamName);
        Assert.Contains("SafetySubspaceOptions.IterativeTolerance must be in (0, 1)", ex.Message);
        Assert.Contains("SafetySubspaceOptions.IterativeMaxIterations must be in [1, 10000]", ex.Message);
        Assert.Throws<ArgumentException>(() => new SafetySubspaceDecomposer(new SafetySubspaceOptions { IterativeTolerance = double.NaN }));
        Assert.Throws<ArgumentException>(() => new SafetySubspaceDecomposer(new SafetySubspaceOptions { IterativeTolerance = 1 }));
        Assert.Throws<ArgumentException>(() => new SafetySubspaceDecomposer(new SafetySubspaceOptions { IterativeMaxIterations = 10001 }));
    }

    private static LayerDecomposition Decompose(DecompositionMethod method, Matrix<double> w, Matrix<double> c, int r)
    {
        var decomposer = new SafetySubspaceDecomposer(new SafetySubspaceOptions { Method = method, Solver = DecompositionSolver.Iterative });
        return decomposer.Decompose("layers.0.q_proj", Oracle.ToTensor(w), method.UsesCovariance() ? Oracle.ToTensor(c) : null, r);
    }

    private static void AssertIterative(LayerDecomposition result)
    {
        Assert.True(result.Diagnostics.Solver == DecompositionSolver.Iterative, $"fell back: {result.Diagnostics.SolverFallbackReason}");
        Assert.Null(result.Diagnostics.SolverFallbackReason);
        Assert.InRange(result.Diagnostics.SolverIterations, 1, 100);
        Assert.True(result.Diagnostics.SolverResidual <= 1e-13, $"residual {result.Diagnostics.SolverResidual:G3}");
    }

    private static void AssertFellBack(LayerDecomposition result, RecordingLogger logger, string layer, string reason)
    {
        Assert.Equal(DecompositionSolver.FullSvd, result.Diagnostics.Solver);
        Assert.Contains(reason, result.Diagnostics.SolverFallbackReason);
        Assert.Contains(logger.Entries, e => e.EventId.Id == FallbackEventId && e.Level == LogLevel.Information && e.Message.Contains(layer) && e.Message.Contains(reason));
        Assert.All(result.Diagnostics.SingularValues, v => Assert.True(double.IsFinite(v))); // the full SVD reports all of them
    }

    /// <summary>The checks of the full-path oracle test: C_l, spectrum, reconstruction, the selected components, balanced factors.</summary>
    private static void AssertMatchesOracle(LayerDecomposition result, Matrix<double> w, Matrix<double> c, int r, DecompositionMethod method, bool checkProduct = true)
    {
        var (m, n) = (w.RowCount, w.ColumnCount);
        var k = Math.Min(m, n);
        var target = w;
        Matrix<double>? cl = null;
        if (method.UsesCovariance())
        {
            cl = c + Matrix<double>.Build.DenseIdentity(n) * result.Diagnostics.DampingAbsolute;
            var lambda = result.Diagnostics.Damping * c.Diagonal().Average();
            Assert.Equal(lambda, result.Diagnostics.DampingAbsolute, 1e-12 * lambda);
            target = w * cl;
        }

        var svd = target.Svd(computeVectors: true);
        var u = svd.U.SubMatrix(0, m, 0, k);
        var s = svd.S;
        var v = svd.VT.SubMatrix(0, k, 0, n).Transpose();
        var vHat = cl is null ? v : cl.Cholesky().Solve(v);

        // Reconstruction (invariant 2): the kept and adapter parts add up to W.
        var b0 = Oracle.ToMatrix(result.AdapterB);
        var a0 = Oracle.ToMatrix(result.AdapterA);
        Assert.True(Oracle.RelativeError(Oracle.ToMatrix(result.Residual) + b0 * a0, w) <= 1e-10, "residual + B0 A0 = W");

        // Ordering (invariant 3): the adapter holds exactly the r smallest (or largest) components, with the oracle's values.
        var first = method.TakesSmallest() ? k - r : 0;
        Assert.Equal(Enumerable.Range(first, r), result.Diagnostics.AdapterIndices);
        var spectrum = result.Diagnostics.SingularValues;
        Assert.Equal(k, spectrum.Count);
        for (var i = 0; i < k; i++)
        {
            if (i >= first && i < first + r)
            {
                Assert.True(Math.Abs(spectrum[i] - s[i]) <= 1e-10 * s[0], $"singular value {i}: {spectrum[i]} vs {s[i]}");
            }
            else if (result.Diagnostics.Solver == DecompositionSolver.Iterative)
            {
                Assert.True(double.IsNaN(spectrum[i]), $"singular value {i} outside the adapter should be NaN on the iterative path");
            }
            else
            {
                Assert.True(Math.Abs(spectrum[i] - s[i]) <= 1e-10 * s[0], $"singular value {i}: {spectrum[i]} vs {s[i]}");
            }
        }

        if (checkProduct)
        {
            var expected = u.SubMatrix(0, m, first, r) * Matrix<double>.Build.DenseOfDiagonalVector(s.SubVector(first, r)) * vHat.SubMatrix(0, n, first, r).Transpose();
            Assert.True(Oracle.RelativeError(b0 * a0, expected) <= 1e-8, $"B0 A0 vs the oracle's components: {Oracle.RelativeError(b0 * a0, expected):G3}");
        }

        // Balanced factors, descending like the full path: B0 = U_r sqrt(S_r) has column norms sqrt(s).
        for (var j = 0; j < r; j++)
        {
            Assert.Equal(Math.Sqrt(s[first + j]), b0.Column(j).L2Norm(), 1e-9 * Math.Sqrt(s[0]));
        }
    }

    /// <summary>
    /// <c>B0 A0</c> against the prescribed factors (unique even where the oracle's own basis of a repeated value is not):
    /// <c>W C_l = Z = P diag(s) Q^T</c>, so the selected part of W is <c>P_r diag(s_r) Q_r^T C_l^-1</c>.
    /// </summary>
    private static void AssertAdapterProduct(LayerDecomposition result, Matrix<double> w, Matrix<double> c, double[] spectrum, int m, int n, int r, DecompositionMethod method, int seed)
    {
        var (p, q) = OrthonormalFactors(m, n, seed);
        var k = Math.Min(m, n);
        var first = method.TakesSmallest() ? k - r : 0;
        var cl = c + Matrix<double>.Build.DenseIdentity(n) * result.Diagnostics.DampingAbsolute;
        var expected = p.SubMatrix(0, m, first, r) * Matrix<double>.Build.DenseOfDiagonalArray(spectrum[first..(first + r)]) * cl.Cholesky().Solve(q.SubMatrix(0, n, first, r)).Transpose();
        var product = Oracle.ToMatrix(result.AdapterB) * Oracle.ToMatrix(result.AdapterA);
        Assert.True(Oracle.RelativeError(product, expected) <= 1e-8, $"B0 A0 vs the prescribed components: {Oracle.RelativeError(product, expected):G3}");
        Assert.True(Oracle.RelativeError(Oracle.ToMatrix(result.Residual) + product, w) <= 1e-10, "residual + B0 A0 = W");
        for (var j = 0; j < r; j++)
        {
            Assert.True(Math.Abs(result.Diagnostics.SingularValues[first + j] - spectrum[first + j]) <= 1e-10 * spectrum.Max(), $"singular value {first + j}");
        }
    }

    /// <summary>
    /// A weight whose product with the damped covariance has exactly the given spectrum: <c>W = Z C_l^-1</c>, with the damping
    /// the decomposer will settle on for this well-conditioned covariance (l = 0.01, no doubling).
    /// </summary>
    private static (Matrix<double> W, Matrix<double> C) WithSpectrum(int m, int n, double[] spectrum, int seed)
    {
        var c = Oracle.Covariance(3 * n, n, seed + 1);
        var cl = c + Matrix<double>.Build.DenseIdentity(n) * (0.01 * c.Diagonal().Average());
        var (p, q) = OrthonormalFactors(m, n, 61);
        var k = Math.Min(m, n);
        var z = p.SubMatrix(0, m, 0, k) * Matrix<double>.Build.DenseOfDiagonalArray(spectrum) * q.SubMatrix(0, n, 0, k).Transpose();
        var w = cl.Cholesky().Solve(z.Transpose()).Transpose(); // Z C_l^-1 (C_l symmetric)
        return (w, c);
    }

    private static (Matrix<double> P, Matrix<double> Q) OrthonormalFactors(int m, int n, int seed) =>
        (Oracle.Random(m, m, seed).QR().Q, Oracle.Random(n, n, seed + 1).QR().Q);
}
