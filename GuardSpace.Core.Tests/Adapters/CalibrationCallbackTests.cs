using GuardSpace.Adapters;
using GuardSpace.Tests.TestUtilities;
using TorchSharp;
using static TorchSharp.torch;

namespace GuardSpace.Tests.Adapters;

/// <summary>A calibration callback that runs nothing is named, with its set (issue 10, item 9).</summary>
public class CalibrationCallbackTests
{
    [Theory]
    [InlineData("safety")]
    [InlineData("harmful")]
    public void AnEmptyCallbackIsNamedWithItsSet(string empty)
    {
        using var scope = NewDisposeScope();
        var model = new TinyTransformer();
        var state = ModelState.Of(model);
        var calibration = new CalibrationData
        {
            RunSafetyPrompts = empty == "safety" ? _ => { } : _ => model.call(GuardedModelInvariantTests.SafetyPrompts).Dispose(),
            RunHarmfulPrompts = empty == "harmful" ? _ => { } : _ => model.call(GuardedModelInvariantTests.HarmfulPrompts).Dispose(),
        };
        var ex = Assert.Throws<InvalidOperationException>(() => GuardedModel.Attach(model, new GuardedLoraOptions { Method = InitializationMethod.GuardSpace, Rank = 2 }, calibration));
        Assert.Contains($"the {empty} covariances", ex.Message);
        Assert.Contains(empty == "safety" ? "RunSafetyPrompts" : "RunHarmfulPrompts", ex.Message);
        Assert.Contains("made no forward pass", ex.Message);
        state.AssertSame(model);
    }
}
