namespace GuardSpace.Models.Export;

/// <summary>One prompt of a logits dump: its text, its token ids, and the logits at the positions written.</summary>
/// <param name="Text">The prompt as given (before tokenization).</param>
/// <param name="TokenIds">The ids the model read.</param>
/// <param name="FirstPosition">The position of the first row of <paramref name="Logits"/> (0 when every position is written, the last position otherwise).</param>
/// <param name="Logits">One row of vocabulary-size logits per written position.</param>
public sealed record LogitsDumpEntry(string Text, IReadOnlyList<int> TokenIds, int FirstPosition, IReadOnlyList<float[]> Logits);
