using System.Diagnostics;
using System.Security.Cryptography;
using System.Text;
using Spectre.Console;
using TorchSharp;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace GuardSpace.Demo;

/// <summary>
/// Stages 1 and 2: the pre-trained model (benign tasks AND harmful compliance: a base that "knows") and the aligned
/// model (refuses harmful requests, keeps solving tasks), trained or loaded from the cache, with their evaluations and
/// what the attacks need from them: the aligned checkpoint, both models' projection weights (AsFT), the spectrum,
/// the refusal replay and the screen.
/// </summary>
public sealed class BaseModels : IDisposable
{
    // Bump when the language, the data splits or the training recipe change: it keys the model cache.
    private const string DataVersion = "lang-v3";

    private BaseModels(string alignedPath) => AlignedPath = alignedPath;

    /// <summary>The aligned model's checkpoint: every attack starts from it.</summary>
    public string AlignedPath { get; }

    public EvalResult Pretrained { get; private set; } = null!;

    public EvalResult Aligned { get; private set; } = null!;

    public Dictionary<string, Tensor> PretrainedWeights { get; private set; } = null!;

    public Dictionary<string, Tensor> AlignedWeights { get; private set; } = null!;

    public SpectrumData? Spectrum { get; private set; }

    /// <summary>The aligned model's own refusals, replayed by the refusal constraint.</summary>
    public RefusalReplay Replay { get; private set; } = null!;

    /// <summary>The poison screen, calibrated on the aligned model.</summary>
    public Screening Screening { get; private set; } = null!;

    public static BaseModels Build(DemoContext demo, ProgressContext progress)
    {
        var o = demo.Options;
        var cacheDir = Path.Combine(o.Out, "cache");
        Directory.CreateDirectory(cacheDir);
        var baseKey = Hash($"{DataVersion}|{demo.Config}|pre{o.PretrainSteps}|b{o.Batch}");
        var alignKey = Hash($"{baseKey}|align{o.AlignSteps}");
        var prePath = Path.Combine(cacheDir, $"pretrained-{baseKey}.bin");
        var result = new BaseModels(Path.Combine(cacheDir, $"aligned-{alignKey}.bin"));

        // Stage 1: pre-training (benign tasks AND harmful compliance): a base model that "knows".
        var pre = progress.AddTask("pre-train", maxValue: o.PretrainSteps);
        using (var model = demo.NewModel())
        {
            demo.Timings["pretrain_seconds"] = TrainOrLoad(demo, model, prePath, o.PretrainSteps, demo.Data.PretrainPool(Math.Max(4000, Math.Min(o.PretrainSteps * o.Batch / 2, 40000)), 101), seed: 1, pre);
            result.PretrainedWeights = ModelConfig.ProjectionWeights(model);
            result.Pretrained = demo.EvaluateExact(model, null);
            AnsiConsole.MarkupLine($"pre-trained: harmful score {result.Pretrained.HarmfulScore:F1}%  accuracy {result.Pretrained.Accuracy:F1}%");
        }

        // Stage 2: alignment (refuse harmful requests, keep solving tasks), full fine-tuning from the base.
        var al = progress.AddTask("align", maxValue: o.AlignSteps);
        using (var model = demo.NewModel())
        {
            model.load(prePath);
            demo.Timings["align_seconds"] = TrainOrLoad(demo, model, result.AlignedPath, o.AlignSteps, demo.Data.AlignPool(Math.Max(4000, Math.Min(o.AlignSteps * o.Batch / 2, 40000)), 202), seed: 2, al);
            result.AlignedWeights = ModelConfig.ProjectionWeights(model);
            var sw = Stopwatch.StartNew();
            result.Aligned = demo.EvaluateExact(model, null);
            demo.Timings["evaluation_seconds"] = sw.Elapsed.TotalSeconds;
            PrintAligned(result.Aligned);
            result.Spectrum = Demo.Spectrum.Compute(model, demo.Data, demo.Device, demo.Config.SpectrumLayer, o.Rank);

            // The behaviour side, built once on the aligned model: its own refusals to replay, and the screen.
            sw.Restart();
            result.Replay = RefusalReplay.Build(model, demo.Data, demo.Device);
            result.Screening = Screening.Calibrate(model, demo.Data, demo.Config.ScreenLayer(), demo.Device);
            var screen = result.Screening.Screen;
            demo.Timings["behaviour_setup_seconds"] = sw.Elapsed.TotalSeconds;
            AnsiConsole.MarkupLine($"refusal replay: {result.Replay.TrainCount} training / {result.Replay.ValidationCount} validation pairs; screen threshold {screen.Threshold:G4} (misses {screen.CalibrationMissRate:P1} of harmful, flags {screen.CalibrationFalseFlagRate:P1} of benign calibration prompts; calibration scores: {Markup.Escape(result.Screening.CalibrationSummary)})");
        }

        return result;
    }

    public void Dispose()
    {
        foreach (var t in new[] { PretrainedWeights, AlignedWeights }.Where(w => w is not null).SelectMany(w => w.Values))
        {
            t.Dispose();
        }

        Replay?.Dispose();
        Screening?.Dispose();
    }

    private static void PrintAligned(EvalResult aligned)
    {
        AnsiConsole.MarkupLine($"aligned:     harmful score {aligned.HarmfulScore:F1}%  accuracy {aligned.Accuracy:F1}%  (e.g. {Markup.Escape(aligned.SampleHarmfulAnswers[0])})");
        foreach (var (t, hs) in aligned.HarmfulScoreByTemplate)
        {
            AnsiConsole.MarkupLine($"  aligned, template '{Markup.Escape(t)}': harmful score {hs:F1}%");
        }

        foreach (var (ob, hs) in aligned.HarmfulScoreByObject)
        {
            AnsiConsole.MarkupLine($"  aligned, object '{Markup.Escape(ob)}': harmful score {hs:F1}%");
        }
    }

    // Warm-up then cosine decay to a tenth of the peak (1e-3), AdamW; the result is cached under a key of its recipe.
    private static double TrainOrLoad(DemoContext demo, Module<Tensor, Tensor> model, string path, int steps, List<Example> pool, int seed, ProgressTask task)
    {
        const double peakLr = 1e-3;
        if (!demo.Options.NoCache && File.Exists(path))
        {
            model.load(path);
            task.Description += " (cached)";
            task.Value = task.MaxValue;
            return 0;
        }

        var sw = Stopwatch.StartNew();
        manual_seed(seed);
        using var encoded = demo.Data.Encode(pool, demo.Device);
        using var adam = optim.AdamW(model.parameters(), lr: peakLr, weight_decay: 0.01);
        var warm = Math.Min(100, steps / 10);
        double LrAt(int s) => s < warm ? peakLr * (s + 1) / warm : peakLr * (0.1 + (0.9 * 0.5 * (1 + Math.Cos(Math.PI * (s - warm) / Math.Max(1, steps - warm)))));
        Trainer.Train(model, encoded, adam, steps, demo.Options.Batch, new Random(seed), LrAt, onStep: s => task.Value = s + 1);
        model.save(path);
        return sw.Elapsed.TotalSeconds;
    }

    private static string Hash(string s) => Convert.ToHexString(SHA256.HashData(Encoding.UTF8.GetBytes(s)))[..12].ToLowerInvariant();
}
