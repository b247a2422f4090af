using GuardSpace.Collection;
using GuardSpace.Targeting;
using GuardSpace.Tests.TestUtilities;
using static TorchSharp.torch;

namespace GuardSpace.Tests.Collection;

public class CovarianceCollectionOptionsTests
{
    [Fact]
    public void DefaultsMatchTheOfficialCode()
    {
        var options = new CovarianceCollectionOptions();
        Assert.Equal(ActivationScaling.PerSampleMaxAbs, options.Scaling);
        Assert.Equal(ScalarType.Float64, options.AccumulationType);
        Assert.True(options.ShareCovarianceForSharedInputs);
        options.Validate();
        new CovarianceCollectionOptions { AccumulationType = ScalarType.Float32 }.Validate();
    }

    [Theory]
    [InlineData(ScalarType.Float16)]
    [InlineData(ScalarType.BFloat16)]
    [InlineData(ScalarType.Int64)]
    public void OtherAccumulationTypesAreRejected(ScalarType type)
    {
        var options = new CovarianceCollectionOptions { AccumulationType = type };
        var ex = Assert.Throws<ArgumentException>(options.Validate);
        Assert.Contains(type.ToString(), ex.Message);
        using var model = new CollectionBlock();
        Assert.Throws<ArgumentException>(() => new ActivationCovarianceCollector(model, TargetModules.AllLinear(), options));
        Assert.Equal(0, ActivationCovarianceCollectorTests.PostHookCount(model.q_proj));
    }

    [Fact]
    public void UndefinedScalingIsRejected()
    {
        var ex = Assert.Throws<ArgumentException>(new CovarianceCollectionOptions { Scaling = (ActivationScaling)7 }.Validate);
        Assert.Contains("Scaling", ex.Message);
    }
}
