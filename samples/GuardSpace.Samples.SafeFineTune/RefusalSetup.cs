using GuardSpace.Behaviour;
using GuardSpace.Models.Behaviour;
using GuardSpace.Models.Templates;
using Microsoft.Extensions.Logging;
using static TorchSharp.torch;

namespace GuardSpace.Samples.SafeFineTune;

/// <summary>The sample's refusal constraint: GuardSpace.Models' refusal data wired into GuardSpace.Core's constraint.</summary>
internal static class RefusalSetup
{
    /// <summary>
    /// The aligned model's greedy answers to the harmful prompts (raw, or through the chat template when they are chat
    /// lines), judged by the markers (none: keep all).
    /// </summary>
    public static RefusalData Build(Checkpoint aligned, SampleOptions options, Device device) =>
        RefusalData.FromGreedyAnswers(aligned.Model, aligned.Tokenizer, [.. aligned.Harmful.Select(l => l.Prompt)], maxNewTokens: options.NewTokens, isRefusal: Judge(options), device: device, format: HarmfulFormat(aligned, options));

    /// <summary>The constraint on <paramref name="model"/> (still computing the aligned function): batches of a quarter of the task's.</summary>
    public static RefusalConstraint Constraint(RefusalData data, Checkpoint checkpoint, SampleOptions options, Device device, IProgress<RefusalConstraintProgress> monitor, ILogger logger)
    {
        var (model, tokenizer, format) = (checkpoint.Model, checkpoint.Tokenizer, HarmfulFormat(checkpoint, options));
        var rng = new Random(1);
        var judge = Judge(options);
        return new RefusalConstraint(
            new RefusalObjective
            {
                BatchLoss = () => data.BatchLoss(model, Math.Max(1, options.Batch / 4), rng, device),
                ValidationLoss = () => data.ValidationLoss(model, options.Batch, device),
                ValidationRefusalRate = judge is null ? null : () => data.RefusalRate(model, tokenizer, judge, maxNewTokens: options.NewTokens, device: device, format: format),
            },
            logger: logger,
            progress: monitor);
    }

    // The refusal data takes one format for all its prompts: the harmful file's (raw, or all chat lines).
    private static PromptFormat? HarmfulFormat(Checkpoint checkpoint, SampleOptions options) => checkpoint.Encoding.ForAll(checkpoint.Harmful, options.Harmful!);

    /// <summary>The refusal judge from --refusal-marker: an answer containing any marker refuses; null (no markers) keeps every answer.</summary>
    private static Func<string, bool>? Judge(SampleOptions options) =>
        options.RefusalMarkers.Count == 0 ? null : answer => options.RefusalMarkers.Any(m => answer.Contains(m, StringComparison.OrdinalIgnoreCase));
}
