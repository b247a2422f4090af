using GuardSpace.Adapters;
using GuardSpace.Tests.TestUtilities;
using TorchSharp;
using static TorchSharp.torch;

namespace GuardSpace.Tests.Adapters;

/// <summary>Attach honours cancellation until its documented commit point, the end of the surgery (issue 10, item 6).</summary>
public class AttachCommitPointTests
{
    [Fact]
    public void CancellingWhenTheSurgeryStartsLeavesTheModelUnchanged()
    {
        using var scope = NewDisposeScope();
        var model = new TinyTransformer();
        var state = ModelState.Of(model);
        using var cts = new CancellationTokenSource();
        var progress = new SynchronousProgress<AttachProgress>(p =>
        {
            if (p.Stage == AttachStage.Surgery && p.Done == 0)
            {
                cts.Cancel();
            }
        });
        Assert.ThrowsAny<OperationCanceledException>(() =>
            GuardedModel.Attach(model, new GuardedLoraOptions { Rank = 3 }, GuardedModelInvariantTests.Calibration(model), progress: progress, cancellationToken: cts.Token));
        state.AssertSame(model);
    }

    [Fact]
    public void CancellingHalfwayThroughTheSurgeryRollsBackTheLayersAlreadyReplaced()
    {
        using var scope = NewDisposeScope();
        var model = new TinyTransformer();
        var state = ModelState.Of(model);
        using var cts = new CancellationTokenSource();
        Assert.ThrowsAny<OperationCanceledException>(() => FaultInjection.AttachWithFault(
            model,
            new GuardedLoraOptions { Rank = 3 },
            name =>
            {
                if (name == "blocks.0.up_proj")
                {
                    cts.Cancel();
                }
            },
            GuardedModelInvariantTests.Calibration(model),
            cts.Token));

        state.AssertSame(model);
    }

    [Fact]
    public void CancellingAfterTheCommitPointIsIgnored()
    {
        using var scope = NewDisposeScope();
        var model = new TinyTransformer();
        using var cts = new CancellationTokenSource();
        var progress = new SynchronousProgress<AttachProgress>(p =>
        {
            if (p.Stage == AttachStage.Surgery && p.Done == p.Total)
            {
                cts.Cancel();
            }
        });
        using var guarded = GuardedModel.Attach(model, new GuardedLoraOptions { Rank = 3 }, GuardedModelInvariantTests.Calibration(model), progress: progress, cancellationToken: cts.Token);
        Assert.Equal(12, guarded.Adapters.Count);
        Assert.True(cts.IsCancellationRequested);
    }
}
