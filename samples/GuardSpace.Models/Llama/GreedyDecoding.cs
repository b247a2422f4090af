using TorchSharp;
using static TorchSharp.torch;

namespace GuardSpace.Models.Llama;

/// <summary>
/// Greedy decoding without a key/value cache: each step runs the whole prefix and appends the most likely token. Simple
/// and exact; fine for the short continuations of the samples (a long generation costs O(n^2) forward work).
/// </summary>
public static class GreedyDecoding
{
    /// <summary>
    /// Appends up to <paramref name="maxNewTokens"/> tokens to <paramref name="prompt"/> and returns only the new ones,
    /// stopping after <paramref name="stopToken"/> (which is not returned). Runs under no_grad in eval mode and restores
    /// the model's training flag.
    /// </summary>
    public static IReadOnlyList<int> Generate(LlamaForCausalLM model, IReadOnlyList<int> prompt, int maxNewTokens, int? stopToken = null, Device? device = null)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(prompt);
        ArgumentOutOfRangeException.ThrowIfNegative(maxNewTokens);
        if (prompt.Count == 0)
        {
            throw new ArgumentException("The prompt must hold at least one token (for example BOS).", nameof(prompt));
        }

        var wasTraining = model.training;
        model.eval();
        try
        {
            using var noGrad = no_grad();
            var ids = prompt.Select(i => (long)i).ToList();
            var generated = new List<int>();
            for (var step = 0; step < maxNewTokens; step++)
            {
                using var scope = NewDisposeScope();
                var input = tensor(ids.ToArray(), device: device).unsqueeze(0);
                var next = (int)model.call(input)[0, -1].argmax().item<long>();
                if (next == stopToken)
                {
                    break;
                }

                generated.Add(next);
                ids.Add(next);
            }

            return generated;
        }
        finally
        {
            model.train(wasTraining);
        }
    }
}
