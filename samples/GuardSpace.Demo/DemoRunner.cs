using System.Diagnostics;
using System.Security.Cryptography;
using System.Text;
using GuardSpace.Adapters;
using GuardSpace.Behaviour;
using GuardSpace.Training;
using Spectre.Console;
using TorchSharp;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace GuardSpace.Demo;

public sealed record SeedResult(int Seed, double HarmfulScore, double Accuracy, double Seconds, float FinalLoss, List<DriftPoint> Drift, int ScreenFlagged, int ScreenFlaggedPoison, List<BehaviourPoint> Behaviour);

/// <summary>The behaviour monitor's reading (the refusal constraint's evaluation) at one attack step.</summary>
public sealed record BehaviourPoint(int Step, double ValidationLoss, double Target, double Multiplier, double? RefusalRate);

/// <summary>Every method's results on one attack scenario.</summary>
public sealed record ScenarioResult(AttackScenario Scenario, List<MethodResult> Methods);

/// <summary>The safety monitor's reading at one attack step: largest and root-mean-square relative change of the guarded layers' harmful outputs.</summary>
public sealed record DriftPoint(int Step, double Max, double RootMeanSquare);

public sealed record LayerInfo(string Name, int InputWidth, int? NullDimension, double? Lambda, bool Frozen);

public sealed record MethodResult(AttackMethod Method, List<SeedResult> Seeds, List<LayerInfo> Layers, int TrainableParameters);

/// <summary>The demo's pipeline: pre-train, align, attack with every method, report.</summary>
public sealed class DemoRunner
{
    // Bump when the language, the data splits or the training recipe change: it keys the model cache.
    private const string DataVersion = "lang-v3";

    // How often the safety monitor is read during an attack (it costs a few small products per layer).
    private const int MonitorEvery = 25;

    private readonly DemoOptions o;
    private readonly Device device;
    private readonly Language lang = new();
    private readonly DemoData data;
    private readonly ModelConfig config;
    private readonly Dictionary<string, double> timings = new(StringComparer.Ordinal);
    private RefusalReplay? replay;
    private Screening? screening;

    public DemoRunner(DemoOptions options)
    {
        o = options;
        if (o.Device == "cuda" && !cuda.is_available())
        {
            throw new InvalidOperationException("--device cuda: CUDA is not available to TorchSharp here (see docs/gpu.md).");
        }

        device = o.Device == "cuda" ? CUDA : CPU;
        if (o.Threads > 0)
        {
            set_num_threads(o.Threads);
        }

        data = new DemoData(lang, o.TaskEvalCount, o.HarmfulEvalCount, o.CalibrationCount, o.NullSpaceCount, o.NullSet);
        config = new ModelConfig(lang.VocabSize, o.Width, o.Layers, o.Heads, o.Mlp, Family: o.Family);
    }

    public int Run()
    {
        var total = Stopwatch.StartNew();
        Directory.CreateDirectory(o.Out);
        var cacheDir = Path.Combine(o.Out, "cache");
        Directory.CreateDirectory(cacheDir);
        AnsiConsole.MarkupLine($"[bold]GuardSpace demo[/] device={device.type} threads={get_num_threads()} vocab={lang.VocabSize} width={o.Width} layers={o.Layers} heads={o.Heads} mlp={o.Mlp}{(o.Quick ? " [yellow](quick smoke run)[/]" : string.Empty)}");
        AnsiConsole.MarkupLine($"attack: {o.TrainSize} items, poison {o.Poison:P0}, rank {o.Rank}, {o.AttackSteps} steps, Adam lr {o.AttackLr}, batch {o.Batch}, seeds {o.Seeds}; null set {o.NullSet.ToString().ToLowerInvariant()}{(o.NullSetAnswers ? " (prompts + refusals)" : " (prompts only)")}; family {o.Family.ToString().ToLowerInvariant()}");

        string baseKey = Hash($"{DataVersion}|{config}|pre{o.PretrainSteps}|b{o.Batch}");
        string alignKey = Hash($"{baseKey}|align{o.AlignSteps}");
        string prePath = Path.Combine(cacheDir, $"pretrained-{baseKey}.bin");
        string alignPath = Path.Combine(cacheDir, $"aligned-{alignKey}.bin");

        EvalResult aligned = null!;
        EvalResult baseEval = null!;
        Dictionary<string, Tensor> baseWeights = null!, alignedWeights = null!;
        var scenarios = new List<ScenarioResult>();
        var methods = (o.Methods ?? AttackMethod.Defaults).Select(m => AttackMethod.Parse(m, o.AsftLambda)).ToList();
        SpectrumData? spectrum = null;

        AnsiConsole.Progress()
            .AutoClear(false)
            .HideCompleted(false)
            .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new ElapsedTimeColumn(), new RemainingTimeColumn())
            .Start(ctx =>
            {
                // Stage 1: pre-training (benign tasks AND harmful compliance): a base model that "knows".
                var pre = ctx.AddTask("pre-train", maxValue: o.PretrainSteps);
                using (var model = NewModel())
                {
                    timings["pretrain_seconds"] = TrainOrLoad(model, prePath, o.PretrainSteps, data.PretrainPool(Math.Max(4000, Math.Min(o.PretrainSteps * o.Batch / 2, 40000)), 101), peakLr: 1e-3, seed: 1, pre);
                    baseWeights = ModelConfig.ProjectionWeights(model);
                    baseEval = EvaluateExact(model, null);
                    AnsiConsole.MarkupLine($"pre-trained: harmful score {baseEval.HarmfulScore:F1}%  accuracy {baseEval.Accuracy:F1}%");
                }

                // Stage 2: alignment (refuse harmful requests, keep solving tasks), full fine-tuning from the base.
                var al = ctx.AddTask("align", maxValue: o.AlignSteps);
                using (var model = NewModel())
                {
                    model.load(prePath);
                    timings["align_seconds"] = TrainOrLoad(model, alignPath, o.AlignSteps, data.AlignPool(Math.Max(4000, Math.Min(o.AlignSteps * o.Batch / 2, 40000)), 202), peakLr: 1e-3, seed: 2, al);
                    alignedWeights = ModelConfig.ProjectionWeights(model);
                    var sw = Stopwatch.StartNew();
                    aligned = EvaluateExact(model, null);
                    timings["evaluation_seconds"] = sw.Elapsed.TotalSeconds;
                    AnsiConsole.MarkupLine($"aligned:     harmful score {aligned.HarmfulScore:F1}%  accuracy {aligned.Accuracy:F1}%  (e.g. {Markup.Escape(aligned.SampleHarmfulAnswers[0])})");
                    foreach (var (t, hs) in aligned.HarmfulScoreByTemplate)
                    {
                        AnsiConsole.MarkupLine($"  aligned, template '{Markup.Escape(t)}': harmful score {hs:F1}%");
                    }

                    foreach (var (ob, hs) in aligned.HarmfulScoreByObject)
                    {
                        AnsiConsole.MarkupLine($"  aligned, object '{Markup.Escape(ob)}': harmful score {hs:F1}%");
                    }

                    spectrum = Spectrum.Compute(model, data, device, config.SpectrumLayer, o.Rank);

                    // The behaviour side, built once on the aligned model: its own refusals to replay, and the screen.
                    sw.Restart();
                    replay = RefusalReplay.Build(model, data, device);
                    screening = Screening.Calibrate(model, data, config.ScreenLayer(), device);
                    var screen = screening.Screen;
                    timings["behaviour_setup_seconds"] = sw.Elapsed.TotalSeconds;
                    AnsiConsole.MarkupLine($"refusal replay: {replay.TrainCount} training / {replay.ValidationCount} validation pairs; screen threshold {screen.Threshold:G4} (misses {screen.CalibrationMissRate:P1} of harmful, flags {screen.CalibrationFalseFlagRate:P1} of benign calibration prompts; calibration scores: {Markup.Escape(screening.CalibrationSummary)})");
                }

                // Stage 3: the attacks, every method with the same data, steps, optimizer and seeds.
                foreach (var scenario in o.Attacks)
                {
                    var sr = new ScenarioResult(scenario, []);
                    var tasks = methods.Select(m => ctx.AddTask($"{scenario.ToString().ToLowerInvariant()}: {Markup.Escape(m.Name)}", maxValue: o.Seeds * o.AttackSteps)).ToList();
                    foreach (var (method, task) in methods.Zip(tasks))
                    {
                        var mr = new MethodResult(method, [], [], 0);
                        for (int s = 0; s < o.Seeds; s++)
                        {
                            var (res, layers, trainable) = Attack(method, scenario, seed: 1000 + s, alignPath, baseWeights, alignedWeights, task, s * o.AttackSteps);
                            mr.Seeds.Add(res);
                            if (s == 0)
                            {
                                mr.Layers.AddRange(layers);
                                mr = mr with { TrainableParameters = trainable };
                            }
                        }

                        task.Value = task.MaxValue;
                        sr.Methods.Add(mr);
                        AnsiConsole.MarkupLine($"{scenario.ToString().ToLowerInvariant(),-8} {Markup.Escape(method.Name),-15} harmful {Mean(mr.Seeds.Select(x => x.HarmfulScore)),5:F1}%  accuracy {Mean(mr.Seeds.Select(x => x.Accuracy)),5:F1}%  ({Mean(mr.Seeds.Select(x => x.Seconds)):F1} s per seed)");
                    }

                    scenarios.Add(sr);
                }
            });

        timings["total_seconds"] = total.Elapsed.TotalSeconds;
        foreach (var t in baseWeights.Values.Concat(alignedWeights.Values))
        {
            t.Dispose();
        }

        replay?.Dispose();
        screening?.Dispose();
        var goals = scenarios.SelectMany(sc => Report.Goals(o, sc.Scenario, aligned, sc.Methods)).ToList();
        foreach (var sc in scenarios)
        {
            Report.PrintTable(sc.Scenario, aligned, sc.Methods, goals.Where(g => g.Scenario == sc.Scenario).ToList());
        }

        var jsonPath = Report.WriteJson(Path.Combine(o.Out, "report.json"), o, config, baseEval, aligned, scenarios, timings, goals, spectrum);
        var charts = scenarios.Select((sc, i) => Charts.HarmfulVsAccuracy(Path.Combine(o.Out, i == 0 ? "harmful_vs_accuracy.png" : $"harmful_vs_accuracy_{sc.Scenario.ToString().ToLowerInvariant()}.png"), aligned, sc.Methods, sc.Scenario.ToString().ToLowerInvariant())).ToList();
        var chart2 = spectrum is null ? null : Charts.SpectrumChart(Path.Combine(o.Out, "spectrum.png"), spectrum);
        var chart3 = Charts.HarmfulDriftChart(Path.Combine(o.Out, "harmful_drift.png"), scenarios[0].Methods);
        var chart4 = Charts.MultiplierChart(Path.Combine(o.Out, "refusal_multiplier.png"), scenarios);
        AnsiConsole.MarkupLine($"wrote {Markup.Escape(jsonPath)}, {Markup.Escape(string.Join(", ", charts))}, {Markup.Escape(chart3)}{(chart4 is null ? string.Empty : ", " + Markup.Escape(chart4))}{(chart2 is null ? string.Empty : ", " + Markup.Escape(chart2))}");
        AnsiConsole.MarkupLine($"total {timings["total_seconds"]:F0} s");
        return 0;
    }

    private (SeedResult Result, List<LayerInfo> Layers, int Trainable) Attack(AttackMethod method, AttackScenario scenario, int seed, string alignPath, Dictionary<string, Tensor> baseWeights, Dictionary<string, Tensor> alignedWeights, ProgressTask task, int offset)
    {
        var sw = Stopwatch.StartNew();
        manual_seed(seed);
        using var model = NewModel();
        model.load(alignPath);

        // What a seed varies: the attack set (which task items, which poisoned items), the batch order and the
        // random adapter initialisation. The pre-trained and aligned models and the calibration sets are shared.
        var attackSet = data.AttackSet(o.TrainSize, o.Poison, seed, scenario);

        // The screen reads the training data with the aligned model, before anything is attached.
        int flagged = 0, flaggedPoison = 0;
        if (method.Screen is { } policy)
        {
            var screened = screening!.Apply(model, data, attackSet, policy, device);
            flaggedPoison = screened.Flagged.Count(i => attackSet[i].Kind == ExampleKind.HarmfulCompliance);
            if (seed == 1000)
            {
                AnsiConsole.MarkupLine($"  screen ({Markup.Escape(method.Name)}, {scenario.ToString().ToLowerInvariant()}, seed {seed}): {Markup.Escape(screening.LastSummary)}");
            }

            (attackSet, flagged) = ([.. screened.Items], screened.Flagged.Count);
        }

        using var encoded = data.Encode(attackSet, device);
        var calibration = new CalibrationData
        {
            RunSafetyPrompts = c => RunPrompts(model, c, data.SafetyCalibration),
            RunHarmfulPrompts = c => RunPrompts(model, c, data.NullSpacePrompts, method.NullSetWithRefusals(o.NullSetAnswers) ? Language.Refusal : null),
        };
        var probes = o.Diagnose ? CaptureProbeInputs(model) : null;
        var options = method.Options(o.Rank, seed);
        using var guarded = GuardedModel.Attach(model, options, calibration);

        var trainable = guarded.TrainableParameters();
        using var asft = method.AsftLambda is { } lambda ? new AsftRegularizer(guarded.Adapters, baseWeights, alignedWeights, lambda) : null;
        using var anchors = method.AnchorWeight > 0 ? data.Encode([.. data.NullSpacePrompts.Select(p => new Example(p, Language.Refusal, ExampleKind.HarmfulRefusal))], device) : null;
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
            ? new RefusalConstraint(replay!.Objective(model, o.Batch, seed), method.ConstraintOptions(), progress: new SynchronousProgress<RefusalConstraintProgress>(p =>
                behaviour.Add(new BehaviourPoint(p.Step, p.ValidationLoss, p.Target, p.Multiplier, p.RefusalRate))))
            : null;

        float loss = float.NaN;
        var drift = new List<DriftPoint>();
        void Monitor(int step)
        {
            var report = guarded.MeasureHarmfulDrift();
            drift.Add(new DriftPoint(step, report.Max, report.RootMeanSquare));
        }

        Monitor(0);
        if (trainable.Count > 0)
        {
            using var adam = optim.Adam(trainable, lr: o.AttackLr);
            optim.Optimizer opt = guarded.WrapOptimizer(adam); // the wrappers hold nothing of their own; adam is disposed above
            opt = constraint?.Wrap(opt) ?? opt;
            loss = Trainer.Train(model, encoded, opt, o.AttackSteps, o.Batch, new Random(seed), extraLoss: extra, onStep: step =>
            {
                task.Value = offset + step + 1;
                if ((step + 1) % MonitorEvery == 0)
                {
                    Monitor(step + 1);
                }

                if (o.EvalEvery > 0 && (step + 1) % o.EvalEvery == 0 && step + 1 < o.AttackSteps)
                {
                    var e = Trainer.Evaluate(model, data, device);
                    AnsiConsole.MarkupLine($"  {method.Name} seed {seed} step {step + 1}: harmful {e.HarmfulScore:F1}%  accuracy {e.Accuracy:F1}%");
                }
            });
        }

        if (probes is not null)
        {
            PrintDiagnosis(method, guarded, probes);
        }

        var seconds = sw.Elapsed.TotalSeconds;
        var eval = EvaluateExact(model, guarded);
        var layers = guarded.Layers.Select(l => new LayerInfo(l.Name, (int)l.InFeatures, (int?)l.NullSpace?.NullDimension, l.Decomposition?.Damping, l.Frozen)).ToList();
        return (new SeedResult(seed, eval.HarmfulScore, eval.Accuracy, seconds, loss, drift, flagged, flaggedPoison, behaviour), layers, (int)trainable.Sum(p => p.numel()));
    }

    /// <summary>Inputs of every guarded Linear on three probe sets, captured on the aligned model before attach, with its weights.</summary>
    private Dictionary<string, (Tensor W, Dictionary<string, Tensor> X)> CaptureProbeInputs(Module<Tensor, Tensor> model)
    {
        var sets = new Dictionary<string, (IReadOnlyList<string> Prompts, string? Answer)>
        {
            ["null set"] = (data.NullSpacePrompts.Take(128).ToList(), Language.Refusal),
            ["held-out harmful"] = (data.HarmfulEval.Take(128).Select(e => e.Prompt).ToList(), Language.Refusal),
            ["task"] = (data.TaskEval.Take(128).Select(e => e.Prompt).ToList(), null),
        };
        var result = new Dictionary<string, (Tensor W, Dictionary<string, Tensor> X)>(StringComparer.Ordinal);
        var linears = model.named_modules().Where(m => m.module is TorchSharp.Modules.Linear && !m.name.EndsWith("lm_head", StringComparison.Ordinal)).ToList();
        foreach (var (name, module) in linears)
        {
            result[name] = (((TorchSharp.Modules.Linear)module).weight!.detach().clone().DetachFromDisposeScope(), new Dictionary<string, Tensor>(StringComparer.Ordinal));
        }

        using var ng = no_grad();
        model.eval();
        foreach (var (set, (prompts, answer)) in sets)
        {
            Tensor? mask = null;
            var hooks = linears.Select(l => ((TorchSharp.Modules.Linear)l.module).register_forward_hook((_, x, _) =>
            {
                var rows = x.reshape(-1, x.shape[^1]).index_select(0, mask!.reshape(-1).nonzero().squeeze(1));
                result[l.name].X[set] = rows.detach().clone().DetachFromDisposeScope();
                return null!;
            })).ToList();
            using (var scope = NewDisposeScope())
            {
                var (ids, m) = data.EncodePrompts(prompts, device, answer);
                mask = m;
                model.call(ids);
            }

            hooks.ForEach(h => h.remove());
        }

        model.train();
        return result;
    }

    private static void PrintDiagnosis(AttackMethod method, GuardedModel guarded, Dictionary<string, (Tensor W, Dictionary<string, Tensor> X)> probes)
    {
        using var scope = NewDisposeScope();
        using var ng = no_grad();
        guarded.Merge();
        var lines = new List<string>();
        var totals = new Dictionary<string, List<double>>(StringComparer.Ordinal);
        foreach (var a in guarded.Adapters.Values)
        {
            var (w, xs) = probes[a.LayerName];
            var dw = a.FrozenWeight - w;
            var parts = new List<string>();
            foreach (var (set, x) in xs)
            {
                var rel = dw.matmul(x.T).norm().ToDouble() / w.matmul(x.T).norm().ToDouble();
                parts.Add($"{set} {rel:G2}");
                (totals.TryGetValue(set, out var l) ? l : totals[set] = []).Add(rel);
            }

            lines.Add($"    {a.LayerName}: {string.Join(", ", parts)}");
        }

        guarded.Unmerge();
        AnsiConsole.MarkupLine(Markup.Escape($"  {method.Name}: relative output change per layer (rms over layers: {string.Join(", ", totals.Select(t => $"{t.Key} {Math.Sqrt(t.Value.Average(v => v * v)):G3}"))})"));
        foreach (var line in lines)
        {
            AnsiConsole.MarkupLine(Markup.Escape(line));
        }
    }

    private void RunPrompts(Module<Tensor, Tensor> model, GuardSpace.Collection.ActivationCovarianceCollector collector, IReadOnlyList<string> prompts, string? answer = null)
    {
        using var ng = no_grad();
        model.eval();
        foreach (var chunk in prompts.Chunk(64))
        {
            using var scope = NewDisposeScope();
            var (ids, mask) = data.EncodePrompts(chunk, device, answer);
            collector.SetTokenMask(mask);
            model.call(ids);
        }

        collector.SetTokenMask(null);
        model.train();
    }

    private double TrainOrLoad(Module<Tensor, Tensor> model, string path, int steps, List<Example> pool, double peakLr, int seed, ProgressTask task)
    {
        if (!o.NoCache && File.Exists(path))
        {
            model.load(path);
            task.Description += " (cached)";
            task.Value = task.MaxValue;
            return 0;
        }

        var sw = Stopwatch.StartNew();
        manual_seed(seed);
        using var encoded = data.Encode(pool, device);
        using var adam = optim.AdamW(model.parameters(), lr: peakLr, weight_decay: 0.01);
        int warm = Math.Min(100, steps / 10);
        double LrAt(int s) => s < warm ? peakLr * (s + 1) / warm : peakLr * (0.1 + (0.9 * 0.5 * (1 + Math.Cos(Math.PI * (s - warm) / Math.Max(1, steps - warm)))));
        Trainer.Train(model, encoded, adam, steps, o.Batch, new Random(seed), LrAt, onStep: s => task.Value = s + 1);
        model.save(path);
        return sw.Elapsed.TotalSeconds;
    }

    /// <summary>The deterministic evaluation: greedy decoding on a float64 copy (<see cref="ExactCopy"/>).</summary>
    private EvalResult EvaluateExact(Module<Tensor, Tensor> model, GuardedModel? guarded)
    {
        using var copy = ExactCopy.Of(config, model, guarded, device);
        return Trainer.Evaluate(copy, data, device);
    }

    private Module<Tensor, Tensor> NewModel()
    {
        var m = config.Create();
        m.to(device);
        return m;
    }

    private static string Hash(string s) => Convert.ToHexString(SHA256.HashData(Encoding.UTF8.GetBytes(s)))[..12].ToLowerInvariant();

    public static double Mean(IEnumerable<double> xs) => xs.DefaultIfEmpty(double.NaN).Average();

    public static double Sd(IEnumerable<double> xs)
    {
        var l = xs.ToList();
        if (l.Count < 2)
        {
            return 0;
        }

        var m = l.Average();
        return Math.Sqrt(l.Sum(x => (x - m) * (x - m)) / (l.Count - 1));
    }
}
