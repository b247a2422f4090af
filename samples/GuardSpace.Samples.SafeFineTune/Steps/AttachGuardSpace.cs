using GuardSpace.Adapters;
using GuardSpace.Collection;
using Spectre.Console;
using static TorchSharp.torch;

namespace GuardSpace.Samples.SafeFineTune;

/// <summary>
/// Step 2: GuardSpace on the loaded model (covariances of the safety and harmful prompts, null spaces, decomposition,
/// surgery), with a progress bar per stage and a table of every guarded layer.
/// </summary>
internal static class AttachGuardSpace
{
    public static GuardedModel Run(Session session, Checkpoint checkpoint)
    {
        var options = session.Options;
        checkpoint.Model.eval();
        var harmfulBatches = Batches.Prompts(checkpoint.Encoding, checkpoint.Harmful, options.Batch, options.MaxLength);
        var safetyBatches = Batches.Prompts(checkpoint.Encoding, checkpoint.Safety, options.Batch, options.MaxLength);
        var guardOptions = GuardOptions(options);
        GuardedModel guarded = null!;
        AnsiConsole.Progress().AutoClear(false).Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new ElapsedTimeColumn()).Start(ctx =>
        {
            var tasks = new Dictionary<AttachStage, ProgressTask>();
            guarded = GuardedModel.Attach(checkpoint.Model, guardOptions, new CalibrationData
            {
                RunSafetyPrompts = collector => RunPrompts(session, checkpoint, collector, safetyBatches),
                RunHarmfulPrompts = collector => RunPrompts(session, checkpoint, collector, harmfulBatches),
            }, progress: new SynchronousProgress<AttachProgress>(p =>
            {
                if (!tasks.TryGetValue(p.Stage, out var task))
                {
                    task = tasks[p.Stage] = ctx.AddTask($"GuardSpace: {p.Stage}", maxValue: Math.Max(1, p.Total));
                }

                task.Value = p.Done;
            }));
            foreach (var task in tasks.Values)
            {
                task.Value = task.MaxValue;
            }
        });

        PrintLayers(guarded);
        session.Lap("attach GuardSpace");
        return guarded;
    }

    // The library's default (capacity-aware null space, drift penalty with its floor) or, with --official, the paper's.
    private static GuardedLoraOptions GuardOptions(SampleOptions options)
    {
        var guardOptions = options.Official ? GuardedLoraOptions.Official() : new GuardedLoraOptions();
        guardOptions.Rank = options.Rank;
        guardOptions.TrackHarmfulDrift = true; // the safety monitor of the fine-tune, also with --official
        (guardOptions.NullSpace.Rule, guardOptions.NullSpace.EnergyFraction, guardOptions.NullSpace.RelativeThreshold) = (options.Rule, options.Energy, options.RelativeThreshold);
        return guardOptions;
    }

    private static void RunPrompts(Session session, Checkpoint checkpoint, ActivationCovarianceCollector collector, List<long[][]> batches)
    {
        foreach (var rows in batches)
        {
            using var scope = NewDisposeScope();
            var (ids, mask) = Batches.Pad(rows, checkpoint.Pad, session.Device);
            collector.SetTokenMask(mask);
            checkpoint.Model.Forward(ids, mask);
        }

        collector.SetTokenMask(null);
    }

    private static void PrintLayers(GuardedModel guarded)
    {
        var table = new Table().AddColumns("layer", "in", "null space", "adapter");
        foreach (var layer in guarded.Layers)
        {
            table.AddRow(layer.Name, layer.InFeatures.ToString(), layer.NullSpace is { } n ? $"{n.NullDimension} / {n.InputWidth}" : "-", layer.Frozen ? "[yellow]frozen (no null space)[/]" : $"rank {layer.Rank}");
        }

        AnsiConsole.Write(table);
    }
}
