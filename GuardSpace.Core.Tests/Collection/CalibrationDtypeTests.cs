using GuardSpace.Adapters;
using GuardSpace.Targeting;
using GuardSpace.Tests.TestUtilities;
using TorchSharp;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace GuardSpace.Tests.Collection;

/// <summary>Calibration inputs of another dtype than the model get a clear error naming the layer and both dtypes (issue 10, item 4).</summary>
public class CalibrationDtypeTests
{
    [Fact]
    public void CalibrationInAnotherDtypeNamesTheLayerAndTheDtypes()
    {
        using var scope = NewDisposeScope();
        manual_seed(8);
        var model = Sequential(("fc1", Linear(6, 8)), ("act", Tanh()), ("fc2", Linear(8, 4)));
        var state = ModelState.Of(model);
        var float64 = randn(5, 6, dtype: ScalarType.Float64);
        var ex = Assert.Throws<ArgumentException>(() => GuardedModel.Attach(model,
            new GuardedLoraOptions { Method = InitializationMethod.NullSpaceLora, Rank = 2, Targets = TargetModules.Suffixes("fc1", "fc2") },
            new CalibrationData { RunHarmfulPrompts = _ => model.call(float64).Dispose() }));
        Assert.Contains("'fc1'", ex.Message);
        Assert.Contains("Float64", ex.Message);
        Assert.Contains("Float32", ex.Message);
        Assert.DoesNotContain("m1 and m2", ex.Message);
        state.AssertSame(model);

        // The collector's hooks are gone: the same input now fails inside libtorch, not in GuardSpace's check.
        var after = Assert.ThrowsAny<Exception>(() => model.call(float64));
        Assert.DoesNotContain("calibration input", after.Message);
    }
}
