using GuardSpace.Adapters;
using GuardSpace.Tests.TestUtilities;
using TorchSharp;
using static TorchSharp.torch;

namespace GuardSpace.Tests.Serialization;

/// <summary>Load refuses a model whose weights are not the adapter's original ones, unless told otherwise (issue 10, item 2).</summary>
public class BaseWeightFingerprintTests
{
    [Fact]
    public void OtherWeightsOfTheSameShapesAreRefusedAndChangeNothing()
    {
        using var scope = NewDisposeScope();
        using var directory = SavedAdapters.TrainAndSave(seed: 1);
        var other = new TinyTransformer(seed: 2);
        var state = ModelState.Of(other);
        var ex = Assert.Throws<ArgumentException>(() => GuardedModel.Load(other, directory));
        Assert.Contains("made from other weights", ex.Message);
        Assert.Contains("AllowBaseWeightMismatch", ex.Message);
        Assert.Contains("'blocks.0.q_proj'", ex.Message);
        Assert.Contains("'blocks.1.down_proj'", ex.Message);
        state.AssertSame(other);
    }

    [Fact]
    public void AFineTunedCopyOfTheOriginalIsRefusedToo()
    {
        using var scope = NewDisposeScope();
        using var directory = SavedAdapters.TrainAndSave(seed: 1);
        var tuned = new TinyTransformer(seed: 1);
        using (no_grad())
        {
            var weight = tuned.named_parameters().Single(p => p.name == "blocks.1.o_proj.weight").parameter;
            weight.mul_(1 + 1e-4);
        }

        var ex = Assert.Throws<ArgumentException>(() => GuardedModel.Load(tuned, directory));
        Assert.Contains("'blocks.1.o_proj'", ex.Message);
        Assert.DoesNotContain("'blocks.0.q_proj'", ex.Message);
    }

    [Fact]
    public void TheOverrideLoadsAnywayAndWarns()
    {
        using var scope = NewDisposeScope();
        using var directory = SavedAdapters.TrainAndSave(seed: 1);
        var logger = new RecordingLoggerFactory();
        using var loaded = GuardedModel.Load(new TinyTransformer(seed: 2), directory, logger, new AdapterLoadOptions { AllowBaseWeightMismatch = true });
        Assert.Equal(12, loaded.Adapters.Count);
        Assert.Contains(logger.Logger.Entries, e => e.EventId.Id == 403 && e.Message.Contains("blocks.0.q_proj"));
    }

    [Fact]
    public void TheOriginalConvertedToAnotherDtypeStillMatches()
    {
        using var scope = NewDisposeScope();
        using var directory = SavedAdapters.TrainAndSave(seed: 1);
        var converted = new TinyTransformer(seed: 1);
        converted.to(ScalarType.Float32);
        using var loaded = GuardedModel.Load(converted, directory);
        Assert.All(loaded.Adapters.Values, a => Assert.Equal(ScalarType.Float32, a.FrozenWeight.dtype));
    }
}
