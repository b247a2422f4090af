using GuardSpace.Adapters;
using GuardSpace.Tests.Adapters;
using GuardSpace.Tests.TestUtilities;
using TorchSharp;
using static TorchSharp.torch;

namespace GuardSpace.Tests.Serialization;

/// <summary>Load refuses corrupted state files: per-tensor checksums, orthonormal bases and A = A P (issue 10, item 1).</summary>
public class AdapterIntegrityTests
{
    private static void AssertRefused(string directory, params string[] expected)
    {
        using var scope = NewDisposeScope();
        var model = new TinyTransformer();
        var state = ModelState.Of(model);
        var ex = Assert.Throws<InvalidDataException>(() => GuardedModel.Load(model, directory));
        foreach (var text in expected)
        {
            Assert.Contains(text, ex.Message);
        }

        state.AssertSame(model);
    }

    [Fact]
    public void AFactorWhoseBytesChangedFailsItsChecksum()
    {
        using var directory = SavedAdapters.TrainAndSave();
        // Low mantissa bytes of lora_B: still finite and close, so only the checksum can tell.
        SavedAdapters.FlipBytes(SavedAdapters.StatePath(directory), "blocks.1.up_proj.lora_B");
        AssertRefused(directory, "blocks.1.up_proj.lora_B", "does not match its checksum", "Nothing was changed");
    }

    [Fact]
    public void FlippedBytesInATrainedAOrABasisAreRefused()
    {
        using var directory = SavedAdapters.TrainAndSave();
        var state = SavedAdapters.StatePath(directory);
        var bytes = File.ReadAllBytes(state);
        SavedAdapters.FlipBytes(state, "blocks.0.q_proj.lora_A");
        AssertRefused(directory, "blocks.0.q_proj.lora_A");

        File.WriteAllBytes(state, bytes);
        SavedAdapters.FlipBytes(state, "projector.blocks.0.up_proj.basis");
        AssertRefused(directory, "projector.blocks.0.up_proj.basis");
    }

    [Fact]
    public void AVersion1FileStillLoadsAndSaysItWasNotChecksummed()
    {
        using var scope = NewDisposeScope();
        using var directory = SavedAdapters.TrainAndSave();
        SavedAdapters.DowngradeToVersion1(directory);
        var logger = new RecordingLoggerFactory();
        using var loaded = GuardedModel.Load(new TinyTransformer(), directory, logger);
        Assert.Equal(12, loaded.Adapters.Count);
        Assert.Contains(logger.Logger.Entries, e => e.EventId.Id == 402 && e.Message.Contains("format version 1"));
    }

    [Fact]
    public void ABasisThatIsNoLongerOrthonormalIsRefusedEvenWithoutChecksums()
    {
        using var directory = SavedAdapters.TrainAndSave();
        SavedAdapters.DowngradeToVersion1(directory);
        SavedAdapters.ReplaceTensor(directory, "projector.blocks.1.o_proj.basis", basis => basis * 1.001);
        AssertRefused(directory, "projector.blocks.1.o_proj.basis", "not an orthonormal basis");
    }

    [Fact]
    public void AnAOutsideItsNullSpaceIsRefusedEvenWithoutChecksums()
    {
        using var directory = SavedAdapters.TrainAndSave();
        SavedAdapters.DowngradeToVersion1(directory);
        SavedAdapters.ReplaceTensor(directory, "blocks.0.down_proj.lora_A", a => a + 1e-6 * ones_like(a));
        AssertRefused(directory, "blocks.0.down_proj.lora_A", "leaves the null space");
    }

    [Fact]
    public void NonFiniteFactorsAreRefusedEvenWithoutChecksums()
    {
        using var directory = SavedAdapters.TrainAndSave();
        SavedAdapters.DowngradeToVersion1(directory);
        SavedAdapters.ReplaceTensor(directory, "blocks.0.k_proj.lora_B", b =>
        {
            var copy = b.clone();
            copy[0, 0] = tensor(double.PositiveInfinity);
            return copy;
        });
        AssertRefused(directory, "blocks.0.k_proj.lora_B", "NaN or infinite");
    }
}
