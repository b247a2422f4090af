namespace GuardSpace.Models.Tokenization;

/// <summary>A piece of the input on its way to the model.</summary>
/// <param name="Text">The (normalized, pre-tokenized) text.</param>
/// <param name="AtStart">True when the piece begins at the start of the input (Metaspace's <c>prepend_scheme: first</c> looks at it).</param>
internal readonly record struct TextPiece(string Text, bool AtStart);
