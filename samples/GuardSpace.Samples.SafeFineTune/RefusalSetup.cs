using GuardSpace.Behaviour;
using GuardSpace.Models.Behaviour;
using GuardSpace.Models.Llama;
using GuardSpace.Models.Tokenization;
using Microsoft.Extensions.Logging;
using static TorchSharp.torch;

namespace GuardSpace.Samples.SafeFineTune;

/// <summary>The sample's refusal constraint: GuardSpace.Models' refusal data wired into GuardSpace.Core's constraint.</summary>
internal static class RefusalSetup
{
    /// <summary>The aligned model's greedy answers to the harmful prompts, judged by the markers (none: keep all).</summary>
    public static RefusalData Build(LlamaForCausalLM aligned, HfTokenizer tokenizer, IReadOnlyList<string> harmful, SampleOptions options, Device device)
    {
        return RefusalData.FromGreedyAnswers(aligned, tokenizer, harmful, maxNewTokens: options.NewTokens, isRefusal: Judge(options), device: device);
    }

    /// <summary>The constraint on <paramref name="model"/> (still computing the aligned function): batches of a quarter of the task's.</summary>
    public static RefusalConstraint Constraint(RefusalData data, LlamaForCausalLM model, HfTokenizer tokenizer, SampleOptions options, Device device, IProgress<RefusalConstraintProgress> monitor, ILogger logger)
    {
        var rng = new Random(1);
        var judge = Judge(options);
        return new RefusalConstraint(
            new RefusalObjective
            {
                BatchLoss = () => data.BatchLoss(model, Math.Max(1, options.Batch / 4), rng, device),
                ValidationLoss = () => data.ValidationLoss(model, options.Batch, device),
                ValidationRefusalRate = judge is null ? null : () => data.RefusalRate(model, tokenizer, judge, maxNewTokens: options.NewTokens, device: device),
            },
            logger: logger,
            progress: monitor);
    }

    /// <summary>The refusal judge from --refusal-marker: an answer containing any marker refuses; null (no markers) keeps every answer.</summary>
    private static Func<string, bool>? Judge(SampleOptions options) =>
        options.RefusalMarkers.Count == 0 ? null : answer => options.RefusalMarkers.Any(m => answer.Contains(m, StringComparison.OrdinalIgnoreCase));
}
