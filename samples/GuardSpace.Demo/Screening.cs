using GuardSpace.Behaviour;
using TorchSharp;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace GuardSpace.Demo;

/// <summary>
/// The demo's use of the library's screen: the aligned model's refusal direction (<see cref="RefusalDirection"/>) at the
/// input of <see cref="ModelConfig.ScreenLayer"/>, at each prompt's last token, and a <see cref="PoisonScreen"/> calibrated
/// on its scores of the safety-calibration prompts (harmful) and <see cref="DemoData.BenignCalibration"/>.
/// </summary>
public sealed class Screening : IDisposable
{
    private readonly RefusalDirection direction;
    private readonly string layer;

    private Screening(RefusalDirection direction, PoisonScreen screen, string layer, string calibrationSummary)
    {
        this.direction = direction;
        CalibrationSummary = calibrationSummary;
        Screen = screen;
        this.layer = layer;
    }

    public PoisonScreen Screen { get; }

    /// <summary>The calibration scores' ranges (min .. median .. max), harmful and benign.</summary>
    public string CalibrationSummary { get; }

    /// <summary>What the last <see cref="Apply"/> flagged, per kind of example, with the score range (min .. median .. max).</summary>
    public string LastSummary { get; private set; } = string.Empty;

    public static Screening Calibrate(Module<Tensor, Tensor> aligned, DemoData data, string layer, Device device)
    {
        using var scope = NewDisposeScope();
        var direction = RefusalDirection.Fit(Features(aligned, data, data.SafetyCalibration, layer, device), Features(aligned, data, data.BenignCalibration, layer, device));
        var harmful = direction.Score(Features(aligned, data, data.SafetyCalibration, layer, device));
        var benign = direction.Score(Features(aligned, data, data.BenignCalibration, layer, device));
        static string Range(double[] v)
        {
            var o = v.Order().ToArray();
            return $"{o[0]:F2} .. {o[o.Length / 2]:F2} .. {o[^1]:F2}";
        }

        return new Screening(direction, PoisonScreen.Calibrate(harmful, benign), layer, $"harmful {Range(harmful)}, benign {Range(benign)}");
    }

    /// <summary>Scores every attack item's prompt with the aligned model and applies <paramref name="policy"/>; a relabelled item gets the aligned refusal.</summary>
    public ScreenResult<Example> Apply(Module<Tensor, Tensor> aligned, DemoData data, IReadOnlyList<Example> items, ScreenPolicy policy, Device device)
    {
        using var scope = NewDisposeScope();
        var scores = direction.Score(Features(aligned, data, [.. items.Select(e => e.Prompt)], layer, device));
        LastSummary = string.Join("; ", items.Select((e, i) => (e.Kind, Score: scores[i])).GroupBy(x => x.Kind).Select(g =>
        {
            var v = g.Select(x => x.Score).Order().ToArray();
            return $"{g.Key}: {v.Count(Screen.IsFlagged)} of {v.Length} flagged, scores {v[0]:F2} .. {v[v.Length / 2]:F2} .. {v[^1]:F2}";
        })) + $" (threshold {Screen.Threshold:F2})";
        return Screen.Apply(items, scores, policy, e => e with { Answer = Language.Refusal, Kind = ExampleKind.HarmfulRefusal });
    }

    public void Dispose() => direction.Dispose();

    /// <summary>The input of <paramref name="layer"/> at each prompt's last token (&lt;sep&gt;), [prompts, width].</summary>
    private static Tensor Features(Module<Tensor, Tensor> model, DemoData data, IReadOnlyList<string> prompts, string layer, Device device)
    {
        var linear = (TorchSharp.Modules.Linear)model.named_modules().Single(m => m.name == layer).module;
        var rows = new List<Tensor>();
        Tensor? last = null;
        using var hook = new HookHandle(linear.register_forward_hook((_, x, _) =>
        {
            // Detached from the model's own dispose scopes (the Llama forward opens some); freed after the cat below.
            rows.Add(x.gather(1, last!.view(-1, 1, 1).expand(-1, 1, x.shape[^1])).squeeze(1).to_type(ScalarType.Float64).detach().DetachFromDisposeScope());
            return null!;
        }));
        using var noGrad = no_grad();
        var wasTraining = model.training;
        model.eval();
        foreach (var chunk in prompts.Chunk(256))
        {
            var (ids, mask) = data.EncodePrompts(chunk, device);
            last = mask.sum(1).to_type(ScalarType.Int64) - 1;
            model.call(ids);
        }

        model.train(wasTraining);
        var features = cat(rows, 0);
        rows.ForEach(r => r.Dispose());
        return features;
    }

    /// <summary>Removes a forward hook on dispose.</summary>
    private sealed class HookHandle(HookableModule<Func<Module<Tensor, Tensor>, Tensor, Tensor>, Func<Module<Tensor, Tensor>, Tensor, Tensor, Tensor>>.HookRemover remover) : IDisposable
    {
        public void Dispose() => remover.remove();
    }
}
