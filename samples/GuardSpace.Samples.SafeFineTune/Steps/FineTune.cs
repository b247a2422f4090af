using GuardSpace.Behaviour;
using Microsoft.Extensions.Logging;
using Spectre.Console;
using TorchSharp;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace GuardSpace.Samples.SafeFineTune;

/// <summary>
/// Step 3: fine-tune with AdamW wrapped by GuardSpace (projects the gradients, steps, re-projects A) and, with refusal
/// data, by the refusal constraint; the safety and behaviour monitors are shown every 10 steps.
/// </summary>
internal static class FineTune
{
    public static TrainingResult Run(Session session, Checkpoint checkpoint, GuardedModel guarded, IReadOnlyList<Models.Data.PromptExample> train, Models.Behaviour.RefusalData? refusals)
    {
        var options = session.Options;
        var trainable = guarded.TrainableParameters();
        var result = new TrainingResult(null, null, null);
        if (trainable.Count > 0)
        {
            // The behaviour monitor: the constraint's readings (validation refusal loss, its target, the multiplier).
            RefusalConstraintProgress? reading = null;
            // Warnings (a constraint violated for long: the task pulls harder than the replayed refusals) go to the console.
            using var loggerFactory = LoggerFactory.Create(b => b.AddSimpleConsole(o => o.SingleLine = true).SetMinimumLevel(LogLevel.Warning));
            var constraint = refusals is null ? null : RefusalSetup.Constraint(refusals, checkpoint, options, session.Device, new SynchronousProgress<RefusalConstraintProgress>(p => reading = p), loggerFactory.CreateLogger("GuardSpace.Behaviour"));
            checkpoint.Model.train();
            optim.Optimizer optimizer = guarded.WrapOptimizer(optim.AdamW(trainable, options.LearningRate, weight_decay: 0.0));
            optimizer = constraint?.Wrap(optimizer) ?? optimizer;
            using var ownedOptimizer = optimizer;
            var (first, last) = Train(session, checkpoint, guarded, train, optimizer, () => reading);
            result = new TrainingResult(first, last, constraint);
            checkpoint.Model.eval();
            if (constraint?.Evaluate() is { } final)
            {
                AnsiConsole.MarkupLineInterpolated($"refusal constraint: validation refusal loss {final.ValidationLoss:F4} (aligned {constraint.Baseline:F4}, target {final.Target:F4}), multiplier {final.Multiplier:G3}{(final.RefusalRate is { } rate ? $", refusal rate {rate:P0}" : string.Empty)}");
            }
        }

        var nothing = result.Trained ? string.Empty : trainable.Count == 0 ? " (nothing trained: every adapter is frozen)" : " (no step ran)";
        AnsiConsole.MarkupLineInterpolated($"training loss: {TrainingResult.Format(result.FirstLoss)} -> {TrainingResult.Format(result.LastLoss)} over {(result.Trained ? options.Steps : 0)} steps{nothing}");
        var finalDrift = guarded.MeasureHarmfulDrift();
        AnsiConsole.MarkupLineInterpolated($"safety monitor: largest change of a guarded layer's harmful outputs {finalDrift.Max:G3} ({finalDrift.MaxLayer ?? "-"}), rms {finalDrift.RootMeanSquare:G3}");
        session.Lap("fine-tune");
        return result;
    }

    private static (double? First, double? Last) Train(Session session, Checkpoint checkpoint, GuardedModel guarded, IReadOnlyList<Models.Data.PromptExample> train, optim.Optimizer optimizer, Func<RefusalConstraintProgress?> reading)
    {
        var options = session.Options;
        var examples = train.Select(e => Batches.Example(checkpoint.Encoding, e, options.MaxLength)).ToList();
        var vocab = checkpoint.Model.Config.VocabSize;
        var order = new Random(0);
        double? first = null, last = null;
        AnsiConsole.Progress().AutoClear(false).Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new ElapsedTimeColumn()).Start(ctx =>
        {
            var task = ctx.AddTask("fine-tune", maxValue: options.Steps);
            for (var step = 0; step < options.Steps; step++)
            {
                using var scope = NewDisposeScope();
                var batch = Enumerable.Range(0, options.Batch).Select(_ => examples[order.Next(examples.Count)]).ToList();
                var (ids, mask) = Batches.Pad([.. batch.Select(b => b.Ids)], checkpoint.Pad, session.Device);
                var (labels, _) = Batches.Pad([.. batch.Select(b => b.Labels)], Batches.Ignore, session.Device);
                var logits = checkpoint.Model.Forward(ids, mask);
                var t = ids.shape[1];
                var loss = functional.cross_entropy(
                    logits.narrow(1, 0, t - 1).reshape(-1, vocab).to_type(ScalarType.Float32),
                    labels.narrow(1, 1, t - 1).reshape(-1),
                    ignore_index: Batches.Ignore);
                optimizer.zero_grad();
                loss.backward();
                optimizer.step();
                last = loss.item<float>();
                first ??= last;
                // The safety monitor: how far the guarded layers' outputs on the harmful calibration activations moved.
                var monitor = step % 10 == 9 || step == options.Steps - 1 ? guarded.MeasureHarmfulDrift() : null;
                var behaviour = reading() is { } r ? $", refusal loss {r.ValidationLoss:F3} / target {r.Target:F3}, multiplier {r.Multiplier:G3}" : string.Empty;
                task.Description = monitor is null ? task.Description : $"fine-tune (loss {last:F3}, harmful-output change {monitor.Max:G2}{behaviour})";
                task.Increment(1);
            }
        });
        return (first, last);
    }
}
