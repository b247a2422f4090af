using GuardSpace.Collection;
using TorchSharp;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace GuardSpace.Demo;

/// <summary>What every stage of the demo shares: the options, the device, the language and its data, the model shape, the timings.</summary>
public sealed class DemoContext
{
    public DemoContext(DemoOptions options)
    {
        Options = options;
        if (options.Device == "cuda" && !cuda.is_available())
        {
            throw new InvalidOperationException("--device cuda: CUDA is not available to TorchSharp here (see docs/gpu.md).");
        }

        Device = options.Device == "cuda" ? CUDA : CPU;
        if (options.Threads > 0)
        {
            set_num_threads(options.Threads);
        }

        Data = new DemoData(Language, options.TaskEvalCount, options.HarmfulEvalCount, options.CalibrationCount, options.NullSpaceCount, options.NullSet);
        Config = new ModelConfig(Language.VocabSize, options.Width, options.Layers, options.Heads, options.Mlp, Family: options.Family);
    }

    public DemoOptions Options { get; }

    public Device Device { get; }

    public Language Language { get; } = new();

    public DemoData Data { get; }

    public ModelConfig Config { get; }

    /// <summary>Seconds per stage, written to report.json.</summary>
    public Dictionary<string, double> Timings { get; } = new(StringComparer.Ordinal);

    /// <summary>A fresh model of the demo's shape on the device.</summary>
    public Module<Tensor, Tensor> NewModel()
    {
        var m = Config.Create();
        m.to(Device);
        return m;
    }

    /// <summary>The deterministic evaluation: greedy decoding on a float64 copy (<see cref="ExactCopy"/>).</summary>
    public EvalResult EvaluateExact(Module<Tensor, Tensor> model, GuardedModel? guarded)
    {
        using var copy = ExactCopy.Of(Config, model, guarded, Device);
        return Trainer.Evaluate(copy, Data, Device);
    }

    /// <summary>Runs <paramref name="prompts"/> (each followed by <paramref name="answer"/>, if any) through the model for a covariance collector.</summary>
    public void RunPrompts(Module<Tensor, Tensor> model, ActivationCovarianceCollector collector, IReadOnlyList<string> prompts, string? answer = null)
    {
        using var ng = no_grad();
        model.eval();
        foreach (var chunk in prompts.Chunk(64))
        {
            using var scope = NewDisposeScope();
            var (ids, mask) = Data.EncodePrompts(chunk, Device, answer);
            collector.SetTokenMask(mask);
            model.call(ids);
        }

        collector.SetTokenMask(null);
        model.train();
    }
}
