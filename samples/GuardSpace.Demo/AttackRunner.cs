using System.Diagnostics;
using GuardSpace.Adapters;
using GuardSpace.Behaviour;
using GuardSpace.Training;
using Spectre.Console;
using TorchSharp;
using static TorchSharp.torch;

namespace GuardSpace.Demo;

/// <summary>
/// Stage 3, one attack run: the aligned model fine-tuned by one method on one scenario's data with one seed (screen,
/// attach, train with the safety and behaviour monitors, evaluate on a float64 copy).
/// </summary>
public sealed class AttackRunner(DemoContext demo, BaseModels bases)
{
    // How often the safety monitor is read during an attack (it costs a few small products per layer).
    private const int MonitorEvery = 25;

    public (SeedResult Result, List<LayerInfo> Layers, int Trainable) Run(AttackMethod method, AttackScenario scenario, int seed, ProgressTask task, int offset)
    {
        var sw = Stopwatch.StartNew();
        manual_seed(seed);
        using var model = demo.NewModel();
        model.load(bases.AlignedPath);

        // What a seed varies: the attack set (which task items, which poisoned items), the batch order and the
        // random adapter initialisation. The pre-trained and aligned models and the calibration sets are shared.
        var attackSet = demo.Data.AttackSet(demo.Options.TrainSize, demo.Options.Poison, seed, scenario);

        // The screen reads the training data with the aligned model, before anything is attached.
        int flagged = 0, flaggedPoison = 0;
        if (method.Screen is { } policy)
        {
            var screened = bases.Screening.Apply(model, demo.Data, attackSet, policy, demo.Device);
            flaggedPoison = screened.Flagged.Count(i => attackSet[i].Kind == ExampleKind.HarmfulCompliance);
            if (seed == 1000)
            {
                AnsiConsole.MarkupLine($"  screen ({Markup.Escape(method.Name)}, {scenario.ToString().ToLowerInvariant()}, seed {seed}): {Markup.Escape(bases.Screening.LastSummary)}");
            }

            (attackSet, flagged) = ([.. screened.Items], screened.Flagged.Count);
        }

        using var encoded = demo.Data.Encode(attackSet, demo.Device);
        var calibration = new CalibrationData
        {
            RunSafetyPrompts = c => demo.RunPrompts(model, c, demo.Data.SafetyCalibration),
            RunHarmfulPrompts = c => demo.RunPrompts(model, c, demo.Data.NullSpacePrompts, method.NullSetWithRefusals(demo.Options.NullSetAnswers) ? Language.Refusal : null),
        };
        var probes = demo.Options.Diagnose ? ProbeDiagnosis.Capture(demo, model) : null;
        var options = method.Options(demo.Options.Rank, seed);
        using var guarded = GuardedModel.Attach(model, options, calibration);

        var trainable = guarded.TrainableParameters();
        using var asft = method.AsftLambda is { } lambda ? new AsftRegularizer(guarded.Adapters, bases.PretrainedWeights, bases.AlignedWeights, lambda) : null;
        using var anchors = method.AnchorWeight > 0 ? demo.Data.Encode([.. demo.Data.NullSpacePrompts.Select(p => new Example(p, Language.Refusal, ExampleKind.HarmfulRefusal))], demo.Device) : null;
        var anchorRng = new Random(seed + 77);
        Func<Tensor>? extra = asft is null ? null : asft.Penalty;
        if (anchors is not null)
        {
            var previous = extra;
            extra = () =>
            {
                var anchor = Trainer.BatchLoss(model, anchors, 8, anchorRng) * method.AnchorWeight;
                return previous is null ? anchor : anchor + previous();
            };
        }

        // The refusal constraint, created on the aligned function (identity at attach): its baseline is the aligned model's.
        var behaviour = new List<BehaviourPoint>();
        var constraint = method.Constrained
            ? new RefusalConstraint(bases.Replay.Objective(model, demo.Options.Batch, seed), method.ConstraintOptions(), progress: new SynchronousProgress<RefusalConstraintProgress>(p =>
                behaviour.Add(new BehaviourPoint(p.Step, p.ValidationLoss, p.Target, p.Multiplier, p.RefusalRate))))
            : null;

        float? loss = null; // stays null when every adapter is frozen: nothing trained, no loss
        var drift = new List<DriftPoint>();
        void Monitor(int step)
        {
            var report = guarded.MeasureHarmfulDrift();
            drift.Add(new DriftPoint(step, report.Max, report.RootMeanSquare));
        }

        Monitor(0);
        if (trainable.Count > 0)
        {
            using var adam = optim.Adam(trainable, lr: demo.Options.AttackLr);
            optim.Optimizer opt = guarded.WrapOptimizer(adam); // the wrappers hold nothing of their own; adam is disposed above
            opt = constraint?.Wrap(opt) ?? opt;
            loss = Trainer.Train(model, encoded, opt, demo.Options.AttackSteps, demo.Options.Batch, new Random(seed), extraLoss: extra, onStep: step =>
            {
                task.Value = offset + step + 1;
                if ((step + 1) % MonitorEvery == 0)
                {
                    Monitor(step + 1);
                }

                if (demo.Options.EvalEvery > 0 && (step + 1) % demo.Options.EvalEvery == 0 && step + 1 < demo.Options.AttackSteps)
                {
                    var e = Trainer.Evaluate(model, demo.Data, demo.Device);
                    AnsiConsole.MarkupLine($"  {method.Name} seed {seed} step {step + 1}: harmful {e.HarmfulScore:F1}%  accuracy {e.Accuracy:F1}%");
                }
            });
        }

        if (probes is not null)
        {
            ProbeDiagnosis.Print(method, guarded, probes);
        }

        var seconds = sw.Elapsed.TotalSeconds;
        var eval = demo.EvaluateExact(model, guarded);
        var layers = guarded.Layers.Select(l => new LayerInfo(l.Name, (int)l.InFeatures, (int?)l.NullSpace?.NullDimension, l.Decomposition?.Damping, l.Frozen)).ToList();
        return (new SeedResult(seed, eval.HarmfulScore, eval.Accuracy, seconds, loss, drift, flagged, flaggedPoison, behaviour), layers, (int)trainable.Sum(p => p.numel()));
    }
}
