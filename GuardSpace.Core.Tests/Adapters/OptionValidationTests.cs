using GuardSpace.Adapters;
using GuardSpace.Collection;
using GuardSpace.Decomposition;
using GuardSpace.Projection;
using static TorchSharp.torch;

namespace GuardSpace.Tests.Adapters;

/// <summary>Validate() reports every invalid option at once, with ParamName set to the first (issue 10, item 8).</summary>
public class OptionValidationTests
{
    [Fact]
    public void EveryInvalidOptionIsListedAndParamNameIsTheFirst()
    {
        var options = new GuardedLoraOptions
        {
            Rank = 0,
            Scale = double.NaN,
            NullSpace = new NullSpaceOptions { EnergyFraction = 2, ComputeType = ScalarType.BFloat16 },
            Subspace = new SafetySubspaceOptions { InitialDamping = -1 },
            Collection = new CovarianceCollectionOptions { AccumulationType = ScalarType.Int32 },
        };
        var ex = Assert.Throws<ArgumentException>(options.Validate);
        Assert.Equal("Rank", ex.ParamName);
        foreach (var path in new[] { "GuardedLoraOptions.Rank", "GuardedLoraOptions.Scale", "GuardedLoraOptions.NullSpace.EnergyFraction",
                     "GuardedLoraOptions.NullSpace.ComputeType", "GuardedLoraOptions.Subspace.InitialDamping", "GuardedLoraOptions.Collection.AccumulationType" })
        {
            Assert.Contains(path, ex.Message);
        }

        Assert.Contains("6 invalid values", ex.Message);
    }

    [Fact]
    public void NestedOptionsAloneNameTheirOwnProperties()
    {
        var ex = Assert.Throws<ArgumentException>(new NullSpaceOptions { RelativeThreshold = 0, AbsoluteFloor = -1 }.Validate);
        Assert.Equal("RelativeThreshold", ex.ParamName);
        Assert.Contains("NullSpaceOptions.AbsoluteFloor", ex.Message);

        var nested = Assert.Throws<ArgumentException>(new GuardedLoraOptions { NullSpace = new NullSpaceOptions { EnergyFraction = 0 } }.Validate);
        Assert.Equal("NullSpace.EnergyFraction", nested.ParamName);
        Assert.Contains("an invalid value", nested.Message);
    }
}
