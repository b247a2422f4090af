using GuardSpace.Projection;
using GuardSpace.Tests.TestUtilities;
using MathNet.Numerics.LinearAlgebra;
using TorchSharp;
using static TorchSharp.torch;

namespace GuardSpace.Tests.Projection;

public class NullSpaceProjectorTests
{
    /// <summary>Invariant 4 against MathNet's float64 eigendecomposition, for a null basis and a complement basis.</summary>
    [Theory]
    [InlineData(16, 5, 1)]   // 5 tokens: 11 null directions, the null basis (11) is stored... complement (5) is smaller
    [InlineData(16, 12, 2)]  // 12 tokens: 4 null directions, the null basis is stored
    [InlineData(24, 3, 3)]
    [InlineData(9, 8, 4)]
    public void ProjectorIsTheOrthogonalProjectorOntoTheOracleNullSpace(int n, int tokens, int seed)
    {
        var x = Oracle.Random(tokens, n, seed);
        var c = x.TransposeThisAndMultiply(x);
        using var scope = NewDisposeScope();
        using var projector = NullSpaceProjector.Fit("layers.0.q_proj", Oracle.ToTensor(c));

        // Oracle null space: eigenvalues under max(1e-8, 1e-6 max mu).
        var evd = c.Evd(MathNet.Numerics.LinearAlgebra.Symmetricity.Symmetric);
        var mu = evd.EigenValues.Select(z => z.Real).ToArray();
        var threshold = Math.Max(1e-8, 1e-6 * mu.Max());
        var nullIdx = Enumerable.Range(0, n).Where(i => mu[i] <= threshold).ToArray();
        Assert.Equal(n - tokens, nullIdx.Length);
        Assert.Equal(nullIdx.Length, projector.NullDimension);
        Assert.Equal(threshold, projector.Diagnostics.Threshold, 1e-12 * threshold);

        var oracleN = Matrix<double>.Build.Dense(n, nullIdx.Length, (i, j) => evd.EigenVectors[i, nullIdx[j]]);
        var oracleP = oracleN * oracleN.Transpose();
        var p = Oracle.ToMatrix(projector.ProjectRows(eye(n, dtype: ScalarType.Float64)));

        Assert.True(Oracle.RelativeError(p, oracleP) <= 1e-8, $"P vs oracle: {Oracle.RelativeError(p, oracleP):G3}");
        Assert.True((p * p - p).FrobeniusNorm() <= 1e-12 * Math.Sqrt(n), "P^2 = P");
        Assert.True((p - p.Transpose()).FrobeniusNorm() <= 1e-12 * Math.Sqrt(n), "P^T = P");
        Assert.True((c * p).FrobeniusNorm() <= Math.Sqrt(n) * threshold + 1e-12 * c.FrobeniusNorm(), "C_h P ~ mu P with every kept mu under the threshold");
        Assert.True((x * p).FrobeniusNorm() <= 1e-10 * x.FrobeniusNorm(), "harmful activations are annihilated");

        // Storage: the smaller basis, never a dense n x n matrix.
        var smaller = Math.Min(nullIdx.Length, n - nullIdx.Length);
        Assert.Equal(n * smaller * sizeof(double), projector.StoredBytes);
        Assert.Equal(nullIdx.Length <= n - nullIdx.Length, projector.Diagnostics.StoresNullBasis);
        Assert.Equal(projector.Diagnostics.StoresNullBasis ? nullIdx.Length : n - nullIdx.Length, projector.Basis.shape[1]);
    }

    [Fact]
    public void InPlaceProjectionKeepsTheHandleAndMatchesOutOfPlace()
    {
        var x = Oracle.Random(6, 20, 5);
        using var scope = NewDisposeScope();
        using var projector = NullSpaceProjector.Fit("fc", Oracle.ToTensor(x.TransposeThisAndMultiply(x)));
        var rows = randn(4, 20, dtype: ScalarType.Float64);
        var original = rows.clone();
        var expected = projector.ProjectRows(rows);
        Assert.True(rows.eq(original).all().item<bool>(), "out-of-place projection leaves its input alone");
        var handle = rows.Handle;
        projector.ProjectRowsInPlace(rows);
        Assert.Equal(handle, rows.Handle);
        Assert.True(Oracle.RelativeError(rows, expected) <= 1e-14);
        Assert.True(Oracle.RelativeError(rows, original) > 0.1, "projection actually changed the rows");

        // Mixed dtypes: float32 rows against a float64 basis.
        var rows32 = original.to_type(ScalarType.Float32);
        projector.ProjectRowsInPlace(rows32);
        Assert.Equal(ScalarType.Float32, rows32.dtype);
        Assert.True(Oracle.RelativeError(rows32, expected) <= 1e-6);
    }

    [Fact]
    public void ToConvertsDeviceAndTypeButNeverBelowFloat32()
    {
        var x = Oracle.Random(3, 10, 9);
        using var scope = NewDisposeScope();
        using var projector = NullSpaceProjector.Fit("fc", Oracle.ToTensor(x.TransposeThisAndMultiply(x)));
        using var half = projector.To(CPU, ScalarType.Float16);
        Assert.Equal(ScalarType.Float32, half.BasisType);
        var p = Oracle.ToMatrix(half.ProjectRows(eye(10, dtype: ScalarType.Float32)));
        Assert.True((p * p - p).FrobeniusNorm() <= 1e-5, "float32 basis stays idempotent");
    }

    [Fact]
    public void AbsoluteAndEnergyRulesFollowTheirDefinitions()
    {
        const int n = 12;
        var q = Oracle.Random(n, n, 17).QR().Q;
        var mu = new[] { 100.0, 50, 20, 10, 5, 1, 0.5, 0.1, 0.05, 0.01, 0.001, 0.0 };
        var c = q * Matrix<double>.Build.DenseOfDiagonalArray(mu) * q.Transpose();
        using var scope = NewDisposeScope();

        using var absolute = NullSpaceProjector.Fit("fc", Oracle.ToTensor(c), new NullSpaceOptions { Rule = NullSpaceThresholdRule.Absolute, AbsoluteThreshold = 0.2 });
        Assert.Equal(5, absolute.NullDimension); // 0.1, 0.05, 0.01, 0.001, 0

        // Energy: protect the fewest top directions holding 95% of the trace (186.66): 100+50+20+10 = 180 >= 177.3.
        using var energy = NullSpaceProjector.Fit("fc", Oracle.ToTensor(c), new NullSpaceOptions { Rule = NullSpaceThresholdRule.EnergyFraction, EnergyFraction = 0.95 });
        Assert.Equal(n - 4, energy.NullDimension);
        Assert.Equal(180.0 / mu.Sum(), energy.Diagnostics.ProtectedEnergyFraction, 1e-10);

        using var relative = NullSpaceProjector.Fit("fc", Oracle.ToTensor(c));
        Assert.Equal(1, relative.NullDimension); // threshold max(1e-8, 1e-6 * 100) = 1e-4: only the zero eigenvalue
    }

    [Fact]
    public void EmptyNullSpacePoliciesAreExplicit()
    {
        var x = Oracle.Random(200, 8, 23); // many tokens, isotropic: no null space under the relative rule
        var c = Oracle.ToTensor(x.TransposeThisAndMultiply(x));
        using var scope = NewDisposeScope();

        var ex = Assert.Throws<InvalidOperationException>(() =>
            NullSpaceProjector.Fit("blocks.0.mlp.down_proj", c, new NullSpaceOptions { EmptyPolicy = EmptyNullSpacePolicy.Throw }));
        Assert.Contains("blocks.0.mlp.down_proj", ex.Message);
        Assert.Contains("no null space", ex.Message);

        var logger = new RecordingLogger();
        using var frozen = NullSpaceProjector.Fit("blocks.0.mlp.down_proj", c, logger: logger);
        Assert.Equal(0, frozen.NullDimension);
        Assert.True(frozen.Diagnostics.IsEmpty);
        Assert.Equal(0.0, frozen.ProjectRows(randn(3, 8, dtype: ScalarType.Float64)).abs().max().item<double>());
        Assert.Contains(logger.Warnings, w => w.Contains("blocks.0.mlp.down_proj") && w.Contains("frozen"));

        var fallbackLogger = new RecordingLogger();
        using var fallback = NullSpaceProjector.Fit("blocks.0.mlp.down_proj", c, new NullSpaceOptions { EmptyPolicy = EmptyNullSpacePolicy.FallBackToEnergy, EnergyFraction = 0.9 }, fallbackLogger);
        Assert.True(fallback.Diagnostics.FellBack);
        Assert.Equal(NullSpaceThresholdRule.EnergyFraction, fallback.Diagnostics.Rule);
        Assert.InRange(fallback.NullDimension, 1, 7);
        Assert.Contains(fallbackLogger.Entries, e => e.EventId.Id == 302 && e.Message.Contains("blocks.0.mlp.down_proj") && e.Message.Contains("fell back"));
    }

    /// <summary>Activations of rank <paramref name="rank"/> in width 32 (anisotropic): an exact null space of 32 - rank directions.</summary>
    private static Tensor LowRankCovariance(int rank, int seed)
    {
        var x = Oracle.Random(400, rank, seed) * Oracle.Random(rank, 32, seed + 1);
        return Oracle.ToTensor(x.TransposeThisAndMultiply(x));
    }

    [Fact]
    public void MinimumNullFractionWidensOnlyTheLayersBelowIt()
    {
        using var scope = NewDisposeScope();
        var options = new NullSpaceOptions { EmptyPolicy = EmptyNullSpacePolicy.FallBackToEnergy, MinimumNullFraction = 0.125, EnergyFraction = 0.99 };

        // 8 exact null directions of 32 (25%): at least the minimum (4), so the exact null space is kept as it is.
        var large = LowRankCovariance(24, 31);
        using var exact = NullSpaceProjector.Fit("large", large, options);
        using var official = NullSpaceProjector.Fit("large", large);
        Assert.False(exact.Diagnostics.FellBack);
        Assert.Equal(NullSpaceThresholdRule.Relative, exact.Diagnostics.Rule);
        Assert.Equal(8, exact.NullDimension);
        Assert.Equal(official.NullDimension, exact.NullDimension);
        var probe = randn(5, 32, dtype: ScalarType.Float64, generator: new Generator(7));
        Assert.True((exact.ProjectRows(probe) - official.ProjectRows(probe)).abs().max().ToDouble() < 1e-12);

        // 2 exact null directions of 32: under the minimum, so the energy rule takes over, and it only ever widens.
        var small = LowRankCovariance(30, 41);
        using var widened = NullSpaceProjector.Fit("small", small, options);
        using var strict = NullSpaceProjector.Fit("small", small);
        Assert.Equal(2, strict.NullDimension);
        Assert.True(widened.Diagnostics.FellBack);
        Assert.Equal(NullSpaceThresholdRule.EnergyFraction, widened.Diagnostics.Rule);
        Assert.True(widened.NullDimension > strict.NullDimension, $"{widened.NullDimension} <= {strict.NullDimension}");

        // The exact null directions stay inside the widened null space (ascending eigenvalues come first).
        var nullProbe = strict.ProjectRows(probe);
        Assert.True((widened.ProjectRows(nullProbe) - nullProbe).abs().max().ToDouble() < 1e-10);

        // Throw names the minimum when the null space is non-empty but too small.
        var error = Assert.Throws<InvalidOperationException>(() => NullSpaceProjector.Fit("small", small, new NullSpaceOptions { EmptyPolicy = EmptyNullSpacePolicy.Throw, MinimumNullFraction = 0.125 }));
        Assert.Contains("fewer than the minimum 4", error.Message);
    }

    [Fact]
    public void BadCovariancesAreRejectedWithTheLayerName()
    {
        using var scope = NewDisposeScope();
        Assert.Contains("expected [", Assert.Throws<ArgumentException>(() => NullSpaceProjector.Fit("fc", zeros(3, 4, dtype: ScalarType.Float64))).Message);
        var nan = eye(4, dtype: ScalarType.Float64);
        nan[1, 1] = tensor(double.NaN);
        Assert.Contains("NaN", Assert.Throws<ArgumentException>(() => NullSpaceProjector.Fit("fc", nan)).Message);
        var asym = eye(4, dtype: ScalarType.Float64);
        asym[0, 3] = tensor(1.0);
        Assert.Contains("not symmetric", Assert.Throws<ArgumentException>(() => NullSpaceProjector.Fit("fc", asym)).Message);
        Assert.Contains("is zero", Assert.Throws<ArgumentException>(() => NullSpaceProjector.Fit("fc", zeros(4, 4, dtype: ScalarType.Float64))).Message);
        var rows = Assert.Throws<ArgumentException>(() =>
        {
            using var p = NullSpaceProjector.Fit("fc", eye(4, dtype: ScalarType.Float64) * 0 + diag(tensor(new[] { 1.0, 0, 0, 0 })));
            p.ProjectRowsInPlace(zeros(2, 5, dtype: ScalarType.Float64));
        });
        Assert.Contains("expected [k, 4]", rows.Message);
        Assert.Throws<ArgumentException>(() => new NullSpaceOptions { RelativeThreshold = 0 }.Validate());
        Assert.Throws<ArgumentException>(() => new NullSpaceOptions { EnergyFraction = 1.5 }.Validate());
        Assert.Throws<ArgumentException>(() => new NullSpaceOptions { ComputeType = ScalarType.BFloat16 }.Validate());
    }
}
