using GuardSpace.Adapters;
using GuardSpace.Projection;
using GuardSpace.Targeting;
using GuardSpace.Tests.TestUtilities;
using TorchSharp;
using static TorchSharp.torch;

namespace GuardSpace.Tests.Adapters;

/// <summary>Layers without a null space: every one is named, and their adapters cost nothing (issue 10, item 10).</summary>
public class FrozenLayerTests
{
    // 60 harmful tokens for inputs of width 6 and 10: no layer has a null space; q/k/v share one covariance.
    // The official null-space rule freezes such layers (the capacity-aware default would fall back to an energy rule).
    private static GuardedModel AttachFrozen(CollectionBlock model, RecordingLoggerFactory? logger = null)
    {
        var harmful = CollectionTestData.Randn(7, 3, 20, CollectionBlock.Width);
        return GuardedModel.Attach(model,
            new GuardedLoraOptions { Method = InitializationMethod.NullSpaceLora, Rank = 2, Targets = TargetModules.Suffixes(CollectionBlock.LayerNames), NullSpace = new NullSpaceOptions() },
            new CalibrationData { RunHarmfulPrompts = _ => model.call(harmful).Dispose() }, logger);
    }

    [Fact]
    public void TheEmptyNullSpaceWarningNamesEveryLayerOfItsGroup()
    {
        using var scope = NewDisposeScope();
        using var model = new CollectionBlock();
        var logger = new RecordingLoggerFactory();
        using var guarded = AttachFrozen(model, logger);
        Assert.All(guarded.Layers, l => Assert.True(l.Frozen, l.Name));
        var warnings = logger.Logger.Entries.Where(e => e.EventId.Id == 301).Select(e => e.Message).ToList();
        Assert.Equal(4, warnings.Count); // one per covariance group: q/k/v, o, up, down
        Assert.Contains(warnings, w => w.Contains("'q_proj'") && w.Contains("'k_proj'") && w.Contains("'v_proj'"));
        foreach (var layer in CollectionBlock.LayerNames)
        {
            Assert.Contains(warnings, w => w.Contains($"'{layer}'"));
        }
    }

    [Fact]
    public void FrozenAdaptersSkipTheirProductsAndKeepTheModelExact()
    {
        using var scope = NewDisposeScope();
        using var model = new CollectionBlock();
        var probe = CollectionTestData.Randn(11, 2, 5, CollectionBlock.Width);
        var before = model.call(probe).detach();
        using var guarded = AttachFrozen(model);
        Assert.True(ModelState.BitEqual(model.call(probe).detach(), before), "identity at init");
        Assert.Empty(guarded.TrainableParameters());

        // A product that ran would turn 0 * NaN into NaN: a finite output proves both products were skipped.
        using (no_grad())
        {
            guarded.Adapters.Values.ToList().ForEach(a => a.LoraB.fill_(double.NaN));
        }

        Assert.True(ModelState.BitEqual(model.call(probe).detach(), before));
        guarded.SetAdaptersEnabled(false);
        Assert.True(ModelState.BitEqual(model.call(probe).detach(), before));
    }
}
