using GuardSpace.Models.Llama;
using GuardSpace.Models.Tokenization;
using TorchSharp;
using static TorchSharp.torch;

namespace GuardSpace.Models.Behaviour;

/// <summary>
/// Activations for a generation-free poison screen (GuardSpace.Core's <c>RefusalDirection</c>): the input of one Linear
/// layer at each prompt's last token, where the model decides how its answer starts.
/// </summary>
public static class PromptFeatures
{
    /// <summary>The layer the screen reads by default: the last decoder layer's MLP input (<c>model.layers.{n-1}.mlp.up_proj</c>).</summary>
    public static string DefaultLayer(LlamaConfig config)
    {
        ArgumentNullException.ThrowIfNull(config);
        return $"model.layers.{config.NumHiddenLayers - 1}.mlp.up_proj";
    }

    /// <summary>
    /// Runs each prompt (BOS + prompt + <paramref name="separator"/>, as the training data is laid out) and returns the
    /// input of <paramref name="layer"/> at its last token, [prompts, width], in float64. Under no_grad, in eval mode; the
    /// model's training flag is restored.
    /// </summary>
    /// <exception cref="ArgumentException">No prompts, or <paramref name="layer"/> is not a Linear module of the model.</exception>
    public static Tensor LastToken(LlamaForCausalLM model, HfTokenizer tokenizer, IReadOnlyList<string> prompts, string? layer = null, string separator = "\n", Device? device = null)
    {
        ArgumentNullException.ThrowIfNull(tokenizer);
        ArgumentNullException.ThrowIfNull(prompts);
        return LastToken(model, [.. prompts.Select(p => tokenizer.Encode(p + separator))], layer, device);
    }

    /// <summary>
    /// As <see cref="LastToken(LlamaForCausalLM, HfTokenizer, IReadOnlyList{string}, string?, string, Device?)"/>, for
    /// prompts already encoded (for example rendered by a chat template through <c>PromptFormat.EncodePrompt</c>).
    /// </summary>
    /// <exception cref="ArgumentException">No prompts, an empty prompt, or <paramref name="layer"/> is not a Linear module of the model.</exception>
    public static Tensor LastToken(LlamaForCausalLM model, IReadOnlyList<IReadOnlyList<int>> promptIds, string? layer = null, Device? device = null)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(promptIds);
        if (promptIds.Count == 0)
        {
            throw new ArgumentException("No prompts to read features from.", nameof(promptIds));
        }

        if (promptIds.Any(p => p.Count == 0))
        {
            throw new ArgumentException("A prompt encodes to no tokens; it has no last token to read.", nameof(promptIds));
        }

        layer ??= DefaultLayer(model.Config);
        var linear = model.named_modules().FirstOrDefault(m => m.name == layer).module as TorchSharp.Modules.Linear
            ?? throw new ArgumentException($"'{layer}' is not a Linear layer of this model; pass the dotted path of one (for example {DefaultLayer(model.Config)}).", nameof(layer));
        var rows = new List<Tensor>();
        using var hook = new Remover(linear.register_forward_hook((_, x, _) =>
        {
            // Detached from the forward's own dispose scopes; freed after the cat below.
            rows.Add(x[0, -1].to_type(ScalarType.Float64).detach().clone().DetachFromDisposeScope());
            return null!;
        }));
        var wasTraining = model.training;
        model.eval();
        try
        {
            using var noGrad = no_grad();
            foreach (var prompt in promptIds)
            {
                using var scope = NewDisposeScope();
                var ids = tensor(prompt.Select(i => (long)i).ToArray(), device: device).unsqueeze(0);
                model.call(ids);
            }

            return stack(rows);
        }
        finally
        {
            model.train(wasTraining);
            rows.ForEach(r => r.Dispose());
        }
    }

    private sealed class Remover(TorchSharp.torch.nn.HookableModule<Func<torch.nn.Module<Tensor, Tensor>, Tensor, Tensor>, Func<torch.nn.Module<Tensor, Tensor>, Tensor, Tensor, Tensor>>.HookRemover remover) : IDisposable
    {
        public void Dispose() => remover.remove();
    }
}
