using System.Globalization;
using System.Text.RegularExpressions;

namespace GuardSpace.Models.Tokenization;

/// <summary>
/// A tokenizer.json regex (written for Oniguruma, which matches whole code points) run with .NET's regex, which
/// matches UTF-16 units: each character outside the BMP is matched as a stand-in BMP character of the same Unicode
/// category, so <c>\p{L}</c>, <c>\p{N}</c> and <c>[^...]</c> classes see one character, as Oniguruma does. Match
/// positions are reported in the original text.
/// </summary>
internal sealed class UnicodeRegex
{
    private static readonly Dictionary<UnicodeCategory, char> StandIns = BuildStandIns();
    private readonly Regex _regex;

    public UnicodeRegex(string pattern, string where)
    {
        try
        {
            _regex = new Regex(pattern, RegexOptions.CultureInvariant, TimeSpan.FromSeconds(10));
        }
        catch (ArgumentException ex)
        {
            throw new InvalidDataException($"{where}: the regex '{pattern}' cannot be compiled by .NET: {ex.Message}", ex);
        }
    }

    /// <summary>The non-empty matches, left to right, as (start, length) in <paramref name="text"/>.</summary>
    public List<(int Start, int Length)> Matches(string text)
    {
        var found = new List<(int, int)>();
        if (!text.Any(char.IsSurrogate))
        {
            for (var m = _regex.Match(text); m.Success; m = m.NextMatch())
            {
                if (m.Length > 0)
                {
                    found.Add((m.Index, m.Length));
                }
            }

            return found;
        }

        var (subject, origin) = StandInText(text);
        for (var m = _regex.Match(subject); m.Success; m = m.NextMatch())
        {
            if (m.Length > 0)
            {
                var start = origin[m.Index];
                found.Add((start, origin[m.Index + m.Length] - start));
            }
        }

        return found;
    }

    /// <summary>The text with each surrogate pair replaced by one character, and each of its positions' index in the original.</summary>
    private static (string Subject, int[] Origin) StandInText(string text)
    {
        var subject = new System.Text.StringBuilder(text.Length);
        var origin = new List<int>(text.Length + 1);
        for (var i = 0; i < text.Length; i++)
        {
            origin.Add(i);
            if (char.IsHighSurrogate(text[i]) && i + 1 < text.Length && char.IsLowSurrogate(text[i + 1]))
            {
                var category = CharUnicodeInfo.GetUnicodeCategory(char.ConvertToUtf32(text[i], text[i + 1]));
                subject.Append(StandIns.GetValueOrDefault(category, '\uE000'));
                i++;
            }
            else
            {
                subject.Append(text[i]);
            }
        }

        origin.Add(text.Length);
        return (subject.ToString(), origin.ToArray());
    }

    /// <summary>For each category, a BMP character of it that is not ASCII (so no case-insensitive literal of a pattern matches it) and not whitespace.</summary>
    private static Dictionary<UnicodeCategory, char> BuildStandIns()
    {
        var map = new Dictionary<UnicodeCategory, char>();
        for (var c = '\u0100'; c < '\uFFFF'; c++)
        {
            var category = char.GetUnicodeCategory(c);
            if (!char.IsSurrogate(c) && !char.IsWhiteSpace(c) && category != UnicodeCategory.OtherNotAssigned)
            {
                map.TryAdd(category, c);
            }
        }

        return map;
    }
}
