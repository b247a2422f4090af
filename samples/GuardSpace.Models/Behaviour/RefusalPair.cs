namespace GuardSpace.Models.Behaviour;

/// <summary>
/// One harmful prompt and the aligned model's own answer to it, tokenized for training: BOS + prompt + separator + answer +
/// EOS, with labels (the next token) on the answer and EOS only; every other position is <see cref="RefusalData.Ignore"/>.
/// </summary>
/// <param name="Prompt">The harmful prompt.</param>
/// <param name="Answer">The aligned model's greedy answer (decoded).</param>
/// <param name="Ids">Input ids.</param>
/// <param name="Labels">Label of each position: the id it should predict next, or <see cref="RefusalData.Ignore"/>.</param>
public sealed record RefusalPair(string Prompt, string Answer, long[] Ids, long[] Labels);
