using System.Diagnostics;
using System.Security.Cryptography;
using System.Text;
using GuardSpace.Adapters;
using GuardSpace.Training;
using Spectre.Console;
using TorchSharp;
using static TorchSharp.torch;

namespace GuardSpace.Demo;

/// <summary>One attack method: an adapter initialisation of the library, optionally with the AsFT regulariser.</summary>
public sealed record AttackMethod(string Key, string Name, InitializationMethod Init, bool Asft = false)
{
    public static readonly AttackMethod[] All =
    [
        new("lora", "LoRA", InitializationMethod.Lora),
        new("pissa", "PiSSA", InitializationMethod.PiSSA),
        new("milora", "MiLoRA", InitializationMethod.MiLoRA),
        new("corda", "CorDA-KPM", InitializationMethod.CorDAKpm),
        new("nullspace", "NullSpace-LoRA", InitializationMethod.NullSpaceLora),
        new("asft", "AsFT", InitializationMethod.Lora, Asft: true),
        new("guardspace", "GuardSpace", InitializationMethod.GuardSpace),
    ];
}

public sealed record SeedResult(int Seed, double HarmfulScore, double Accuracy, double Seconds, float FinalLoss);

public sealed record LayerInfo(string Name, int InputWidth, int? NullDimension, double? Lambda, bool Frozen);

public sealed record MethodResult(AttackMethod Method, List<SeedResult> Seeds, List<LayerInfo> Layers, int TrainableParameters);

/// <summary>The demo's pipeline: pre-train, align, attack with every method, report.</summary>
public sealed class DemoRunner
{
    // Bump when the language, the data splits or the training recipe change: it keys the model cache.
    private const string DataVersion = "lang-v2";

    private readonly DemoOptions o;
    private readonly Device device;
    private readonly Language lang = new();
    private readonly DemoData data;
    private readonly ModelConfig config;
    private readonly Dictionary<string, double> timings = new(StringComparer.Ordinal);

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

        data = new DemoData(lang, o.TaskEvalCount, o.HarmfulEvalCount, o.CalibrationCount, o.NullSpaceCount);
        config = new ModelConfig(lang.VocabSize, o.Width, o.Layers, o.Heads, o.Mlp);
    }

    public int Run()
    {
        var total = Stopwatch.StartNew();
        Directory.CreateDirectory(o.Out);
        var cacheDir = Path.Combine(o.Out, "cache");
        Directory.CreateDirectory(cacheDir);
        AnsiConsole.MarkupLine($"[bold]GuardSpace demo[/] device={device.type} threads={get_num_threads()} vocab={lang.VocabSize} width={o.Width} layers={o.Layers} heads={o.Heads} mlp={o.Mlp}{(o.Quick ? " [yellow](quick smoke run)[/]" : string.Empty)}");
        AnsiConsole.MarkupLine($"attack: {o.TrainSize} items, poison {o.Poison:P0}, rank {o.Rank}, {o.Steps} steps, Adam lr {o.AttackLr}, batch {o.Batch}, seeds {o.Seeds}");

        string baseKey = Hash($"{DataVersion}|{config}|pre{o.PretrainSteps}|b{o.Batch}");
        string alignKey = Hash($"{baseKey}|align{o.AlignSteps}");
        string prePath = Path.Combine(cacheDir, $"pretrained-{baseKey}.bin");
        string alignPath = Path.Combine(cacheDir, $"aligned-{alignKey}.bin");

        EvalResult aligned = null!;
        EvalResult baseEval = null!;
        Dictionary<string, Tensor> baseWeights = null!, alignedWeights = null!;
        var results = new List<MethodResult>();
        var methods = AttackMethod.All.Where(m => o.Methods is null || o.Methods.Contains(m.Key, StringComparer.OrdinalIgnoreCase)).ToList();
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
                    baseWeights = model.ProjectionWeights();
                    baseEval = Trainer.Evaluate(model, data, device);
                    AnsiConsole.MarkupLine($"pre-trained: harmful score {baseEval.HarmfulScore:F1}%  accuracy {baseEval.Accuracy:F1}%");
                }

                // Stage 2: alignment (refuse harmful requests, keep solving tasks), full fine-tuning from the base.
                var al = ctx.AddTask("align", maxValue: o.AlignSteps);
                using (var model = NewModel())
                {
                    model.load(prePath);
                    timings["align_seconds"] = TrainOrLoad(model, alignPath, o.AlignSteps, data.AlignPool(Math.Max(4000, Math.Min(o.AlignSteps * o.Batch / 2, 40000)), 202), peakLr: 1e-3, seed: 2, al);
                    alignedWeights = model.ProjectionWeights();
                    var sw = Stopwatch.StartNew();
                    aligned = Trainer.Evaluate(model, data, device);
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

                    spectrum = Spectrum.Compute(model, data, device, "blocks.1.down_proj", o.Rank);
                }

                // Stage 3: the attack, every method with the same data, steps, optimizer and seeds.
                var tasks = methods.ToDictionary(m => m.Key, m => ctx.AddTask($"attack {m.Name}", maxValue: o.Seeds * o.Steps));
                foreach (var method in methods)
                {
                    var mr = new MethodResult(method, [], [], 0);
                    for (int s = 0; s < o.Seeds; s++)
                    {
                        var (res, layers, trainable) = Attack(method, seed: 1000 + s, alignPath, baseWeights, alignedWeights, tasks[method.Key], s * o.Steps);
                        mr.Seeds.Add(res);
                        if (s == 0)
                        {
                            mr.Layers.AddRange(layers);
                            mr = mr with { TrainableParameters = trainable };
                        }
                    }

                    tasks[method.Key].Value = tasks[method.Key].MaxValue;
                    results.Add(mr);
                    AnsiConsole.MarkupLine($"{method.Name,-15} harmful {Mean(mr.Seeds.Select(x => x.HarmfulScore)),5:F1}%  accuracy {Mean(mr.Seeds.Select(x => x.Accuracy)),5:F1}%  ({Mean(mr.Seeds.Select(x => x.Seconds)):F1} s per seed)");
                }
            });

        timings["total_seconds"] = total.Elapsed.TotalSeconds;
        foreach (var t in baseWeights.Values.Concat(alignedWeights.Values))
        {
            t.Dispose();
        }

        var goals = Report.Goals(aligned, results);
        Report.PrintTable(aligned, results, goals);
        var jsonPath = Report.WriteJson(Path.Combine(o.Out, "report.json"), o, config, baseEval, aligned, results, timings, goals, spectrum);
        var chart1 = Charts.HarmfulVsAccuracy(Path.Combine(o.Out, "harmful_vs_accuracy.png"), aligned, results);
        var chart2 = spectrum is null ? null : Charts.SpectrumChart(Path.Combine(o.Out, "spectrum.png"), spectrum);
        AnsiConsole.MarkupLine($"wrote {Markup.Escape(jsonPath)}, {Markup.Escape(chart1)}{(chart2 is null ? string.Empty : ", " + Markup.Escape(chart2))}");
        AnsiConsole.MarkupLine($"total {timings["total_seconds"]:F0} s");
        return 0;
    }

    private (SeedResult Result, List<LayerInfo> Layers, int Trainable) Attack(AttackMethod method, int seed, string alignPath, Dictionary<string, Tensor> baseWeights, Dictionary<string, Tensor> alignedWeights, ProgressTask task, int offset)
    {
        var sw = Stopwatch.StartNew();
        manual_seed(seed);
        using var model = NewModel();
        model.load(alignPath);

        // What a seed varies: the attack set (which task items, which poisoned items), the batch order and the
        // random adapter initialisation. The pre-trained and aligned models and the calibration sets are shared.
        var attackSet = data.AttackSet(o.TrainSize, o.Poison, seed);
        using var encoded = data.Encode(attackSet, device);
        var calibration = new CalibrationData
        {
            RunSafetyPrompts = c => RunPrompts(model, c, data.SafetyCalibration),
            RunHarmfulPrompts = c => RunPrompts(model, c, data.NullSpacePrompts),
        };
        var options = new GuardedLoraOptions { Rank = o.Rank, Method = method.Init, Seed = seed };
        using var guarded = GuardedModel.Attach(model, options, calibration);
        var trainable = guarded.TrainableParameters();
        using var asft = method.Asft ? new AsftRegularizer(guarded, baseWeights, alignedWeights, o.AsftLambda) : null;
        float loss = float.NaN;
        if (trainable.Count > 0)
        {
            using var adam = optim.Adam(trainable, lr: o.AttackLr);
            var opt = guarded.WrapOptimizer(adam); // holds nothing of its own; adam is disposed above
            loss = Trainer.Train(model, encoded, opt, o.Steps, o.Batch, new Random(seed), extraLoss: asft is null ? null : asft.Penalty, onStep: step => task.Value = offset + step + 1);
        }

        var seconds = sw.Elapsed.TotalSeconds;
        var eval = Trainer.Evaluate(model, data, device);
        var layers = guarded.Layers.Select(l => new LayerInfo(l.Name, (int)l.InFeatures, (int?)l.NullSpace?.NullDimension, l.Decomposition?.Damping, l.Frozen)).ToList();
        return (new SeedResult(seed, eval.HarmfulScore, eval.Accuracy, seconds, loss), layers, (int)trainable.Sum(p => p.numel()));
    }

    private void RunPrompts(TinyLm model, GuardSpace.Collection.ActivationCovarianceCollector collector, IReadOnlyList<string> prompts)
    {
        using var ng = no_grad();
        model.eval();
        foreach (var chunk in prompts.Chunk(64))
        {
            using var scope = NewDisposeScope();
            var (ids, mask) = data.EncodePrompts(chunk, device);
            collector.SetTokenMask(mask);
            model.call(ids);
        }

        collector.SetTokenMask(null);
        model.train();
    }

    private double TrainOrLoad(TinyLm model, string path, int steps, List<Example> pool, double peakLr, int seed, ProgressTask task)
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

    private TinyLm NewModel()
    {
        var m = new TinyLm(config);
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
