using GuardSpace.Behaviour;
using GuardSpace.Models.Behaviour;
using GuardSpace.Models.Data;
using GuardSpace.Models.Llama;
using static TorchSharp.torch;

namespace GuardSpace.Samples.SafeFineTune;

/// <summary>
/// The sample's poison screen: the aligned model's refusal direction (GuardSpace.Models' last-token features of the
/// harmful and the benign prompts) and GuardSpace.Core's <see cref="PoisonScreen"/> over the training examples' prompts,
/// each encoded as the answer will follow it (raw with "\n", or through the chat template).
/// </summary>
internal static class DataScreen
{
    /// <summary>Screens <paramref name="train"/> with <paramref name="aligned"/>; a relabelled example gets the aligned model's own answer.</summary>
    public static ScreenResult<PromptExample> Apply(Checkpoint aligned, IReadOnlyList<PromptExample> benign, IReadOnlyList<PromptExample> train, SampleOptions options, Device device)
    {
        using var scope = NewDisposeScope();
        var (model, encoding) = (aligned.Model, aligned.Encoding);
        Tensor Features(IReadOnlyList<PromptExample> lines) => PromptFeatures.LastToken(model, [.. lines.Select(encoding.BeforeAnswer)], device: device);
        var harmfulFeatures = Features(aligned.Harmful);
        var benignFeatures = Features(benign);
        using var direction = RefusalDirection.Fit(harmfulFeatures, benignFeatures);
        var screen = PoisonScreen.Calibrate(direction.Score(harmfulFeatures), direction.Score(benignFeatures));
        var scores = direction.Score(Features(train));
        return screen.Apply(train, scores, options.Screen, e => e with
        {
            Response = encoding.Tokenizer.Decode(GreedyDecoding.Generate(model, encoding.BeforeAnswer(e), options.NewTokens, encoding.Tokenizer.EosId, device)),
        });
    }
}
