using GuardSpace.Collection;
using GuardSpace.Decomposition;
using GuardSpace.Targeting;
using GuardSpace.Tests.Adapters;
using GuardSpace.Tests.TestUtilities;
using TorchSharp;
using static TorchSharp.torch;

namespace GuardSpace.Tests.Decomposition;

public class DecomposeModelTests
{
    [Fact]
    public void WholeModelDecompositionReportsProgressAndLeavesTheModelAlone()
    {
        using var scope = NewDisposeScope();
        var model = new TinyTransformer();
        var snapshot = TinyTransformer.Snapshot(model);
        var targets = TargetModules.Suffixes("q_proj", "down_proj");
        using var safety = ActivationCovarianceCollector.Collect(model, targets, _ => model.call(GuardedModelInvariantTests.SafetyPrompts).Dispose());
        var reports = new List<DecompositionProgress>();
        var results = new SafetySubspaceDecomposer().DecomposeModel(model, new ModelDecompositionRequest(targets, 3, safety), new SynchronousProgress<DecompositionProgress>(reports.Add));
        try
        {
            Assert.Equal(["blocks.0.q_proj", "blocks.0.down_proj", "blocks.1.q_proj", "blocks.1.down_proj"], results.Keys.ToArray());
            Assert.Equal([1, 2, 3, 4], reports.Select(r => r.LayersDone).ToArray());
            Assert.All(reports, r => Assert.Equal(4, r.LayerCount));
            Assert.All(results.Values, d => Assert.Equal(3, d.Rank));
            SaveLoadTests.AssertUnchanged(model, snapshot);
        }
        finally
        {
            foreach (var d in results.Values)
            {
                d.Dispose();
            }
        }

        using var cts = new CancellationTokenSource();
        cts.Cancel();
        Assert.Throws<OperationCanceledException>(() => new SafetySubspaceDecomposer().DecomposeModel(model, new ModelDecompositionRequest(targets, 3, safety), cancellationToken: cts.Token));
        Assert.Throws<ArgumentException>(() => new SafetySubspaceDecomposer().DecomposeModel(model, new ModelDecompositionRequest(targets, 3)));
    }
}
