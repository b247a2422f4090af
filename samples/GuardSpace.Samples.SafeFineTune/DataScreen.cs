using GuardSpace.Behaviour;
using GuardSpace.Models.Behaviour;
using GuardSpace.Models.Data;
using GuardSpace.Models.Llama;
using GuardSpace.Models.Tokenization;
using static TorchSharp.torch;

namespace GuardSpace.Samples.SafeFineTune;

/// <summary>
/// The sample's poison screen: the aligned model's refusal direction (GuardSpace.Models' last-token features of the
/// harmful and the benign prompts) and GuardSpace.Core's <see cref="PoisonScreen"/> over the training examples' prompts.
/// </summary>
internal static class DataScreen
{
    /// <summary>Screens <paramref name="train"/> with <paramref name="aligned"/>; a relabelled example gets the aligned model's own answer.</summary>
    public static ScreenResult<PromptExample> Apply(LlamaForCausalLM aligned, HfTokenizer tokenizer, IReadOnlyList<string> harmful, IReadOnlyList<string> benign, IReadOnlyList<PromptExample> train, SampleOptions options, Device device)
    {
        using var scope = NewDisposeScope();
        var harmfulFeatures = PromptFeatures.LastToken(aligned, tokenizer, harmful, device: device);
        var benignFeatures = PromptFeatures.LastToken(aligned, tokenizer, benign, device: device);
        using var direction = RefusalDirection.Fit(harmfulFeatures, benignFeatures);
        var screen = PoisonScreen.Calibrate(direction.Score(harmfulFeatures), direction.Score(benignFeatures));
        var scores = direction.Score(PromptFeatures.LastToken(aligned, tokenizer, [.. train.Select(e => e.Prompt)], device: device));
        return screen.Apply(train, scores, options.Screen, e => e with
        {
            Response = tokenizer.Decode(GreedyDecoding.Generate(aligned, tokenizer.Encode(e.Prompt + "\n"), options.NewTokens, tokenizer.EosId, device)),
        });
    }
}
