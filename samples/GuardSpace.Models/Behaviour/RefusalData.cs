using GuardSpace.Models.Llama;
using GuardSpace.Models.Templates;
using GuardSpace.Models.Tokenization;
using TorchSharp;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace GuardSpace.Models.Behaviour;

/// <summary>
/// Refusal data for a causal language model, written by nobody: the aligned model's own greedy answers to the harmful
/// calibration prompts, kept where the caller's judge reads them as refusals, split into training and validation pairs.
/// Its <see cref="BatchLoss"/> and <see cref="ValidationLoss"/> are what GuardSpace.Core's <c>RefusalObjective</c> asks
/// for (cross-entropy on the answer tokens only), and <see cref="RefusalScores"/> is a poison-screen scorer.
/// </summary>
public sealed class RefusalData
{
    /// <summary>The label of a position that does not count in the loss.</summary>
    public const long Ignore = -100;

    private RefusalData(IReadOnlyList<RefusalPair> training, IReadOnlyList<RefusalPair> validation, int promptCount)
    {
        Training = training;
        Validation = validation;
        PromptCount = promptCount;
    }

    /// <summary>Pairs to train on (a random batch per step).</summary>
    public IReadOnlyList<RefusalPair> Training { get; }

    /// <summary>Pairs that decide the constraint's multiplier (never trained on).</summary>
    public IReadOnlyList<RefusalPair> Validation { get; }

    /// <summary>Harmful prompts given, before the judge kept the refusals.</summary>
    public int PromptCount { get; }

    /// <summary>
    /// Asks <paramref name="aligned"/> for its greedy answer (up to <paramref name="maxNewTokens"/> tokens) to every prompt
    /// and keeps the pairs <paramref name="isRefusal"/> accepts (all of them when it is null); one pair in
    /// <paramref name="validationEvery"/> (at least one) goes to validation, chosen by a seeded shuffle.
    /// </summary>
    /// <param name="aligned">The aligned model, before fine-tuning.</param>
    /// <param name="tokenizer">Its tokenizer.</param>
    /// <param name="harmfulPrompts">The harmful calibration prompts, as the user would write them when <paramref name="format"/> has a chat template.</param>
    /// <param name="separator">Text between prompt and answer, as in the training data (the SafeFineTune sample uses "\n"). Unused when <paramref name="format"/> is given.</param>
    /// <param name="maxNewTokens">Longest answer kept.</param>
    /// <param name="isRefusal">The judge: true for an answer that refuses. Null keeps every answer.</param>
    /// <param name="validationEvery">One pair in this many goes to validation. Default 4.</param>
    /// <param name="seed">Seed of the split.</param>
    /// <param name="device">Where the model runs.</param>
    /// <param name="format">
    /// How prompts become ids; null: raw, BOS + prompt + <paramref name="separator"/>. For a chat model give
    /// <c>PromptFormat.Chat(ChatTemplate.Load(dir))</c>: every prompt becomes a user turn with the generation prompt.
    /// </param>
    /// <exception cref="ArgumentException">No prompts, or fewer than two refusals to split.</exception>
    public static RefusalData FromGreedyAnswers(
        LlamaForCausalLM aligned,
        HfTokenizer tokenizer,
        IReadOnlyList<string> harmfulPrompts,
        string separator = "\n",
        int maxNewTokens = 32,
        Func<string, bool>? isRefusal = null,
        int validationEvery = 4,
        int seed = 0,
        Device? device = null,
        PromptFormat? format = null)
    {
        ArgumentNullException.ThrowIfNull(aligned);
        ArgumentNullException.ThrowIfNull(tokenizer);
        ArgumentNullException.ThrowIfNull(harmfulPrompts);
        ArgumentOutOfRangeException.ThrowIfLessThan(validationEvery, 2);
        if (harmfulPrompts.Count == 0)
        {
            throw new ArgumentException("No harmful calibration prompts: refusal data needs at least two prompts the aligned model refuses.", nameof(harmfulPrompts));
        }

        var pairs = new List<RefusalPair>();
        foreach (var prompt in harmfulPrompts)
        {
            var promptIds = PromptIds(tokenizer, prompt, separator, format);
            var answerIds = GreedyDecoding.Generate(aligned, promptIds, maxNewTokens, tokenizer.EosId, device);
            var answer = tokenizer.Decode(answerIds);
            if (answerIds.Count == 0 || (isRefusal is not null && !isRefusal(answer)))
            {
                continue;
            }

            pairs.Add(Pair(prompt, answer, promptIds, answerIds, tokenizer.EosId));
        }

        if (pairs.Count < 2)
        {
            throw new ArgumentException(
                $"The aligned model gave {pairs.Count} refusal(s) to the {harmfulPrompts.Count} harmful calibration prompts; at least two are needed " +
                "(one to train on, one to validate). Check the judge, the chat template and maxNewTokens.", nameof(harmfulPrompts));
        }

        var rng = new Random(seed);
        var shuffled = pairs.OrderBy(_ => rng.Next()).ToList();
        var nValidation = Math.Max(1, shuffled.Count / validationEvery);
        return new RefusalData([.. shuffled.Skip(nValidation)], [.. shuffled.Take(nValidation)], harmfulPrompts.Count);
    }

    /// <summary>The mean answer-token cross-entropy of a random batch of training pairs (differentiable, the model in its current mode).</summary>
    public Tensor BatchLoss(LlamaForCausalLM model, int batchSize, Random rng, Device? device = null)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(rng);
        var batch = Enumerable.Range(0, batchSize).Select(_ => Training[rng.Next(Training.Count)]).ToList();
        return Loss(model, batch, device, Reduction.Mean);
    }

    /// <summary>The answer-token cross-entropy over the whole validation split, per token (the constraint's reading).</summary>
    public double ValidationLoss(LlamaForCausalLM model, int batchSize = 16, Device? device = null)
    {
        ArgumentNullException.ThrowIfNull(model);
        using var noGrad = no_grad();
        double total = 0;
        long tokens = 0;
        foreach (var chunk in Validation.Chunk(batchSize))
        {
            using var scope = NewDisposeScope();
            total += Loss(model, chunk, device, Reduction.Sum).ToDouble();
            tokens += chunk.Sum(p => p.Labels.Count(l => l != Ignore));
        }

        return total / tokens;
    }

    /// <summary>
    /// The share of validation prompts whose greedy answer <paramref name="isRefusal"/> accepts (the monitor's refusal
    /// rate). <paramref name="format"/> as given to <see cref="FromGreedyAnswers"/>.
    /// </summary>
    public double RefusalRate(LlamaForCausalLM model, HfTokenizer tokenizer, Func<string, bool> isRefusal, string separator = "\n", int maxNewTokens = 32, Device? device = null, PromptFormat? format = null)
    {
        ArgumentNullException.ThrowIfNull(isRefusal);
        var refused = Validation.Count(p => isRefusal(tokenizer.Decode(GreedyDecoding.Generate(model, PromptIds(tokenizer, p.Prompt, separator, format), maxNewTokens, tokenizer.EosId, device))));
        return refused / (double)Validation.Count;
    }

    /// <summary>
    /// The poison screen's score of each prompt: the mean log-probability per token that <paramref name="aligned"/> gives
    /// <paramref name="refusal"/> (and EOS) after the prompt and separator (or the prompt rendered by <paramref name="format"/>).
    /// Near 0 where it would refuse; no generation.
    /// </summary>
    public static double[] RefusalScores(LlamaForCausalLM aligned, HfTokenizer tokenizer, IReadOnlyList<string> prompts, string refusal, string separator = "\n", Device? device = null, PromptFormat? format = null)
    {
        ArgumentNullException.ThrowIfNull(prompts);
        var answerIds = tokenizer.Encode(refusal, withBos: false);
        using var noGrad = no_grad();
        var scores = new double[prompts.Count];
        for (var i = 0; i < prompts.Count; i++)
        {
            using var scope = NewDisposeScope();
            var pair = Pair(prompts[i], refusal, PromptIds(tokenizer, prompts[i], separator, format), answerIds, tokenizer.EosId);
            scores[i] = -Loss(aligned, [pair], device, Reduction.Mean).ToDouble();
        }

        return scores;
    }

    /// <summary>The ids a prompt's answer follows: raw (BOS + prompt + separator) or through <paramref name="format"/>.</summary>
    private static IReadOnlyList<int> PromptIds(HfTokenizer tokenizer, string prompt, string separator, PromptFormat? format) =>
        format is null ? tokenizer.Encode(prompt + separator) : format.EncodePrompt(tokenizer, prompt);

    private static RefusalPair Pair(string prompt, string answer, IReadOnlyList<int> promptIds, IReadOnlyList<int> answerIds, int? eos)
    {
        var full = promptIds.Concat(answerIds).Select(i => (long)i).ToList();
        if (eos is { } e)
        {
            full.Add(e);
        }

        // Position i predicts token i + 1: the labels are the answer (and EOS) at the positions before them.
        var ids = full.Take(full.Count - 1).ToArray();
        var labels = ids.Select((_, i) => i + 1 >= promptIds.Count ? full[i + 1] : Ignore).ToArray();
        return new RefusalPair(prompt, answer, ids, labels);
    }

    private static Tensor Loss(LlamaForCausalLM model, IReadOnlyList<RefusalPair> pairs, Device? device, Reduction reduction)
    {
        var t = pairs.Max(p => p.Ids.Length);
        var ids = new long[pairs.Count * t];
        var labels = new long[pairs.Count * t];
        var mask = new long[pairs.Count * t];
        Array.Fill(labels, Ignore);
        for (var b = 0; b < pairs.Count; b++)
        {
            pairs[b].Ids.CopyTo(ids, b * t);
            pairs[b].Labels.CopyTo(labels, b * t);
            Array.Fill(mask, 1, b * t, pairs[b].Ids.Length);
        }

        var logits = model.Forward(tensor(ids, [pairs.Count, t], device: device), tensor(mask, [pairs.Count, t], device: device));
        return functional.cross_entropy(logits.reshape(-1, logits.shape[^1]).to_type(ScalarType.Float32), tensor(labels, device: device), ignore_index: Ignore, reduction: reduction);
    }
}
