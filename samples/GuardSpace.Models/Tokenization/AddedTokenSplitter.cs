using System.Text;

namespace GuardSpace.Models.Tokenization;

/// <summary>
/// Cuts the added tokens out of a text, as Hugging Face tokenizers does: at each position the longest token that
/// starts there wins (leftmost-longest), matches do not overlap, a <c>single_word</c> match touching a word character
/// is dropped, and <c>lstrip</c>/<c>rstrip</c> take the adjacent whitespace into the token.
/// </summary>
internal sealed class AddedTokenSplitter
{
    private readonly Dictionary<char, AddedToken[]> _byFirstChar;

    public AddedTokenSplitter(IEnumerable<AddedToken> tokens) =>
        _byFirstChar = tokens.Where(t => t.Content.Length > 0)
            .GroupBy(t => t.Content[0])
            .ToDictionary(g => g.Key, g => g.OrderByDescending(t => t.Content.Length).ToArray());

    /// <summary>The pieces of <paramref name="text"/> in order: each either an added token or the text between two.</summary>
    public List<(int Start, int Length, AddedToken? Token)> Split(string text)
    {
        var pieces = new List<(int, int, AddedToken?)>();
        var done = 0;
        for (var (start, token) = Next(text, 0); token is not null; (start, token) = Next(text, start + token.Content.Length))
        {
            var stop = start + token.Content.Length;
            if (token.SingleWord && (IsWordBefore(text, start) || IsWordAfter(text, stop)))
            {
                continue;
            }

            var from = token.LeftStrip ? Math.Max(WhitespaceStart(text, start), done) : start;
            var to = token.RightStrip ? WhitespaceEnd(text, stop) : stop;
            if (done < from)
            {
                pieces.Add((done, from - done, null));
            }

            pieces.Add((from, to - from, token));
            done = to;
        }

        if (done < text.Length)
        {
            pieces.Add((done, text.Length - done, null));
        }

        return pieces;
    }

    /// <summary>The leftmost-longest match at or after <paramref name="from"/>.</summary>
    private (int Start, AddedToken? Token) Next(string text, int from)
    {
        for (var i = from; i < text.Length; i++)
        {
            if (_byFirstChar.TryGetValue(text[i], out var candidates))
            {
                foreach (var token in candidates)
                {
                    if (string.CompareOrdinal(text, i, token.Content, 0, token.Content.Length) == 0 && i + token.Content.Length <= text.Length)
                    {
                        return (i, token);
                    }
                }
            }
        }

        return (text.Length, null);
    }

    private static bool IsWordBefore(string text, int index) =>
        index > 0 && Rune.DecodeLastFromUtf16(text.AsSpan(0, index), out var rune, out _) == System.Buffers.OperationStatus.Done && IsWordCharacter(rune);

    private static bool IsWordAfter(string text, int index) =>
        index < text.Length && Rune.DecodeFromUtf16(text.AsSpan(index), out var rune, out _) == System.Buffers.OperationStatus.Done && IsWordCharacter(rune);

    private static bool IsWordCharacter(Rune rune) => Rune.IsLetterOrDigit(rune) || rune.Value == '_';

    private static int WhitespaceStart(string text, int index)
    {
        while (index > 0 && char.IsWhiteSpace(text[index - 1]))
        {
            index--;
        }

        return index;
    }

    private static int WhitespaceEnd(string text, int index)
    {
        while (index < text.Length && char.IsWhiteSpace(text[index]))
        {
            index++;
        }

        return index;
    }
}
