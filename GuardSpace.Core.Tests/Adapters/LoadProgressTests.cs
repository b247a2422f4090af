using GuardSpace.Adapters;
using GuardSpace.Tests.TestUtilities;
using TorchSharp;
using static TorchSharp.torch;

namespace GuardSpace.Tests.Adapters;

/// <summary>Load reports progress and honours cancellation until its commit point (issue 10, item 8).</summary>
public class LoadProgressTests
{
    [Fact]
    public void LoadReportsEveryStage()
    {
        using var scope = NewDisposeScope();
        using var directory = SavedAdapters.TrainAndSave();
        var stages = new List<AttachStage>();
        using var loaded = GuardedModel.Load(new TinyTransformer(), directory, progress: new SynchronousProgress<AttachProgress>(p => stages.Add(p.Stage)));
        Assert.Equal([AttachStage.Reading, AttachStage.Verifying, AttachStage.Decomposition, AttachStage.Surgery], stages.Distinct().ToArray());
    }

    [Theory]
    [InlineData(AttachStage.Reading)]
    [InlineData(AttachStage.Verifying)]
    [InlineData(AttachStage.Decomposition)]
    [InlineData(AttachStage.Surgery)]
    public void ACancelledLoadChangesNothing(AttachStage stage)
    {
        using var scope = NewDisposeScope();
        using var directory = SavedAdapters.TrainAndSave();
        var model = new TinyTransformer();
        var state = ModelState.Of(model);
        using var cts = new CancellationTokenSource();
        var progress = new SynchronousProgress<AttachProgress>(p =>
        {
            if (p.Stage == stage && p.Done == 0)
            {
                cts.Cancel();
            }
        });
        Assert.ThrowsAny<OperationCanceledException>(() => GuardedModel.Load(model, directory, progress: progress, cancellationToken: cts.Token));
        state.AssertSame(model);
    }
}
