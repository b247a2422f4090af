using GuardSpace.Adapters;
using GuardSpace.Tests.TestUtilities;
using TorchSharp;
using static TorchSharp.torch;

namespace GuardSpace.Tests.Adapters;

public class AttachOptionsTests
{
    [Fact]
    public void InvalidOptionsAreRejectedBeforeAnythingHappens()
    {
        using var scope = NewDisposeScope();
        var model = new TinyTransformer();
        var before = TinyTransformer.Snapshot(model);
        Assert.Contains("Rank", Assert.Throws<ArgumentException>(() => GuardedModel.Attach(model, new GuardedLoraOptions { Rank = 0 })).Message);
        Assert.Contains("Scale", Assert.Throws<ArgumentException>(() => GuardedModel.Attach(model, new GuardedLoraOptions { Scale = double.NaN })).Message);
        Assert.Throws<ArgumentException>(() => GuardedModel.Attach(model, new GuardedLoraOptions { NullSpace = new() { EnergyFraction = 2 } }));
        Assert.Throws<ArgumentException>(() => GuardedModel.Attach(model, new GuardedLoraOptions { Subspace = new() { ComputeType = ScalarType.Float16 } }));
        SaveLoadTests.AssertUnchanged(model, before);
    }

    [Fact]
    public void AttachKeepsItsOwnCopyOfTheOptionsAndReportsProgress()
    {
        using var scope = NewDisposeScope();
        var model = new TinyTransformer();
        var options = new GuardedLoraOptions { Method = InitializationMethod.GuardSpace, Rank = 3, Seed = 2 };
        var stages = new List<AttachStage>();
        using var guarded = GuardedModel.Attach(model, options, GuardedModelInvariantTests.Calibration(model), progress: new SynchronousProgress<AttachProgress>(p => stages.Add(p.Stage)));
        options.Rank = 7;
        options.NullSpace.RelativeThreshold = 0.5;
        Assert.Equal(3, guarded.Options.Rank);
        Assert.Equal(1e-6, guarded.Options.NullSpace.RelativeThreshold);
        Assert.Equal([AttachStage.SafetyCovariances, AttachStage.HarmfulCovariances, AttachStage.NullSpaces, AttachStage.Decomposition, AttachStage.Surgery], stages.Distinct().ToArray());
    }

    [Fact]
    public void CancelledAttachLeavesTheModelUnchanged()
    {
        using var scope = NewDisposeScope();
        var model = new TinyTransformer();
        var before = TinyTransformer.Snapshot(model);
        using var cts = new CancellationTokenSource();
        var progress = new SynchronousProgress<AttachProgress>(p =>
        {
            if (p.Stage == AttachStage.Decomposition && p.Done == 5)
            {
                cts.Cancel();
            }
        });
        Assert.ThrowsAny<OperationCanceledException>(() => GuardedModel.Attach(model, new GuardedLoraOptions { Rank = 3 }, GuardedModelInvariantTests.Calibration(model), progress: progress, cancellationToken: cts.Token));
        SaveLoadTests.AssertUnchanged(model, before);
        Assert.All(model.named_modules(), m => Assert.IsNotType<GuardedLoraAdapter>(m.module));
    }
}
