using GuardSpace.Adapters;
using GuardSpace.Projection;
using GuardSpace.Tests.TestUtilities;
using TorchSharp;
using static TorchSharp.torch;

namespace GuardSpace.Tests.Projection;

public class ProjectorHandleTests
{
    /// <summary>The hot path must not convert the basis per step: TorchSharp's Device has reference equality only.</summary>
    [Fact]
    public void MatchingRowsUseTheStoredBasisAndAConversionIsMadeOnce()
    {
        var x = Oracle.Random(4, 10, 3);
        using var scope = NewDisposeScope();
        using var handle = new ProjectorHandle(NullSpaceProjector.Fit("fc", Oracle.ToTensor(x.TransposeThisAndMultiply(x))));
        var rows64 = randn(2, 10, dtype: ScalarType.Float64);
        Assert.Same(handle.Projector, handle.For(rows64));
        Assert.Same(handle.Projector, handle.For(randn(2, 10, dtype: ScalarType.Float64, device: new Device("cpu"))));

        var rows32 = randn(2, 10, dtype: ScalarType.Float32);
        var converted = handle.For(rows32);
        Assert.NotSame(handle.Projector, converted);
        Assert.Equal(ScalarType.Float32, converted.BasisType);
        Assert.Same(converted, handle.For(randn(3, 10, dtype: ScalarType.Float32)));
        Assert.Same(converted, handle.For(randn(3, 10, dtype: ScalarType.BFloat16)));
    }
}
