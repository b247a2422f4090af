using GuardSpace.Projection;
using TorchSharp;
using static TorchSharp.torch;

namespace GuardSpace.Tests.Projection;

/// <summary>What cannot be a covariance, or a row block, is refused by name (issue 10, items 3 and 9).</summary>
public class CovarianceValidityTests
{
    private static Tensor WithEigenvalues(params double[] mu)
    {
        var q = linalg.qr(randn(mu.Length, mu.Length, dtype: ScalarType.Float64, generator: new Generator(5))).Q;
        return q.mm(diag(tensor(mu, ScalarType.Float64))).mm(q.T);
    }

    [Fact]
    public void AnIndefiniteCovarianceIsRefusedNotCountedAsNullDirections()
    {
        using var scope = NewDisposeScope();
        var c = WithEigenvalues(-30, -2, -1, 0, 0, 4, 9, 100);
        var ex = Assert.Throws<ArgumentException>(() => NullSpaceProjector.Fit("blocks.2.up_proj", c));
        Assert.Contains("blocks.2.up_proj", ex.Message);
        Assert.Contains("not positive semi-definite", ex.Message);
        Assert.Contains("3 eigenvalue(s) below zero", ex.Message);
    }

    [Fact]
    public void ANegatedIdentityIsCalledIndefiniteNotZero()
    {
        using var scope = NewDisposeScope();
        var ex = Assert.Throws<ArgumentException>(() => NullSpaceProjector.Fit("fc", -eye(6, dtype: ScalarType.Float64)));
        Assert.Contains("not positive semi-definite", ex.Message);
        Assert.DoesNotContain("is zero", ex.Message);
    }

    [Fact]
    public void RoundingSizedNegativeEigenvaluesAreAccepted()
    {
        using var scope = NewDisposeScope();
        var x = randn(5, 12, dtype: ScalarType.Float64, generator: new Generator(9));
        var c = x.T.mm(x); // rank 5: seven eigenvalues at rounding level, some of them negative
        using var projector = NullSpaceProjector.Fit("fc", c);
        Assert.Equal(7, projector.NullDimension);

        var c32 = c.to_type(ScalarType.Float32);
        using var projector32 = NullSpaceProjector.Fit("fc", c32, new NullSpaceOptions { ComputeType = ScalarType.Float32 });
        Assert.Equal(7, projector32.NullDimension);
    }

    [Fact]
    public void IntegerRowsAreRefusedInsteadOfTruncated()
    {
        using var scope = NewDisposeScope();
        var x = randn(3, 6, dtype: ScalarType.Float64, generator: new Generator(2));
        using var projector = NullSpaceProjector.Fit("blocks.0.o_proj", x.T.mm(x));
        var rows = arange(12, dtype: ScalarType.Int64).reshape(2, 6);
        var before = rows.clone();
        var ex = Assert.Throws<ArgumentException>(() => projector.ProjectRowsInPlace(rows));
        Assert.Contains("blocks.0.o_proj", ex.Message);
        Assert.Contains("Int64", ex.Message);
        Assert.True(rows.eq(before).all().item<bool>());
    }
}
