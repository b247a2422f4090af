namespace GuardSpace.Models.Tokenization;

/// <summary>
/// An entry of tokenizer.json's <c>added_tokens</c>: text that is cut out of the input before the model sees it.
/// </summary>
/// <param name="Id">The token id.</param>
/// <param name="Content">The text matched.</param>
/// <param name="SingleWord">Matched only when no word character (letter, digit, <c>_</c>) touches it on either side.</param>
/// <param name="LeftStrip">Whitespace before a match belongs to the token (and disappears).</param>
/// <param name="RightStrip">Whitespace after a match belongs to the token (and disappears).</param>
/// <param name="Normalized">Matched in the normalized text (after the normalizer) instead of the text as written.</param>
/// <param name="Special">A special token (BOS, EOS, chat markers).</param>
public sealed record AddedToken(int Id, string Content, bool SingleWord, bool LeftStrip, bool RightStrip, bool Normalized, bool Special);
