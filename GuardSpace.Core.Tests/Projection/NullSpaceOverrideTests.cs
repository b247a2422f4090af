using GuardSpace.Adapters;
using GuardSpace.Projection;
using GuardSpace.Targeting;
using GuardSpace.Tests.TestUtilities;
using static TorchSharp.torch;

namespace GuardSpace.Tests.Projection;

/// <summary>Per-layer null-space options (GuardedLoraOptions.NullSpaceOverrides, issue 9).</summary>
public class NullSpaceOverrideTests
{
    // 60 harmful tokens for inputs of width 6 and 10: the relative rule finds no null space anywhere.
    private static CalibrationData Harmful(CollectionBlock model)
    {
        var harmful = CollectionTestData.Randn(7, 3, 20, CollectionBlock.Width);
        return new CalibrationData { RunHarmfulPrompts = _ => model.call(harmful).Dispose() };
    }

    private static GuardedLoraOptions Options(params NullSpaceOverride[] overrides)
    {
        var options = new GuardedLoraOptions
        {
            Method = InitializationMethod.NullSpaceLora,
            Rank = 2,
            Targets = TargetModules.Suffixes(CollectionBlock.LayerNames),
            NullSpace = new NullSpaceOptions(), // official rule: every layer frozen unless an override frees it
        };
        foreach (var o in overrides)
        {
            options.NullSpaceOverrides.Add(o);
        }

        return options;
    }

    [Fact]
    public void TheFirstMatchingOverrideDecidesALayersRuleAndTheOthersKeepTheDefault()
    {
        using var scope = NewDisposeScope();
        using var model = new CollectionBlock();
        var energy = new NullSpaceOptions { Rule = NullSpaceThresholdRule.EnergyFraction, EnergyFraction = 0.9 };
        var never = new NullSpaceOptions { Rule = NullSpaceThresholdRule.EnergyFraction, EnergyFraction = 0.5 };
        using var guarded = GuardedModel.Attach(model,
            Options(new NullSpaceOverride(TargetModules.Suffixes("up_proj"), energy), new NullSpaceOverride(TargetModules.Suffixes("up_proj", "down_proj"), never)),
            Harmful(model));

        var byName = guarded.Layers.ToDictionary(l => l.Name);
        Assert.Equal(NullSpaceThresholdRule.EnergyFraction, byName["up_proj"].NullSpace!.Rule);
        Assert.False(byName["up_proj"].Frozen);
        Assert.True(byName["up_proj"].NullSpace!.ProtectedEnergyFraction >= 0.9);
        Assert.True(byName["up_proj"].NullSpace!.ProtectedEnergyFraction < 0.99, "the 0.5 override would protect less; the first override must win");
        Assert.Equal(NullSpaceThresholdRule.EnergyFraction, byName["down_proj"].NullSpace!.Rule); // second override
        foreach (var layer in new[] { "q_proj", "k_proj", "v_proj", "o_proj" })
        {
            Assert.Equal(NullSpaceThresholdRule.Relative, byName[layer].NullSpace!.Rule);
            Assert.True(byName[layer].Frozen, layer);
        }
    }

    [Fact]
    public void LayersThatShareAProjectorMustResolveToTheSameOptionsAndTheModelIsLeftUnchanged()
    {
        using var scope = NewDisposeScope();
        using var model = new CollectionBlock();
        var state = ModelState.Of(model);
        var energy = new NullSpaceOptions { Rule = NullSpaceThresholdRule.EnergyFraction };
        var error = Assert.Throws<ArgumentException>(() =>
            GuardedModel.Attach(model, Options(new NullSpaceOverride(TargetModules.Suffixes("q_proj"), energy)), Harmful(model)));
        Assert.Contains("'q_proj'", error.Message);
        Assert.Contains("'k_proj'", error.Message);
        Assert.Contains("NullSpaceOverrides", error.Message);
        state.AssertSame(model);
    }

    [Fact]
    public void OverrideOptionsAreValidatedWithTheRest()
    {
        var options = Options(new NullSpaceOverride(TargetModules.Suffixes("up_proj"), new NullSpaceOptions { EnergyFraction = 2 }));
        var error = Assert.Throws<ArgumentException>(options.Validate);
        Assert.Contains("EnergyFraction", error.Message);
    }
}
