using System.Text;

namespace GuardSpace.Models.Templates;

/// <summary>Python's string operations that templates use (<c>strip</c>, <c>split</c>, <c>title</c>...), on .NET strings.</summary>
internal static class JinjaStrings
{
    /// <summary><c>str.strip</c>/<c>lstrip</c>/<c>rstrip</c>: <paramref name="chars"/> null strips whitespace.</summary>
    public static string Strip(string s, string? chars, bool left, bool right)
    {
        bool Strippable(char c) => chars is null ? char.IsWhiteSpace(c) : chars.Contains(c, StringComparison.Ordinal);
        var start = 0;
        var end = s.Length;
        while (left && start < end && Strippable(s[start]))
        {
            start++;
        }

        while (right && end > start && Strippable(s[end - 1]))
        {
            end--;
        }

        return s[start..end];
    }

    /// <summary><c>str.split(sep, maxsplit)</c>: without a separator, runs of whitespace split and empty parts are dropped.</summary>
    public static List<object?> Split(string s, string? separator, long maxSplit)
    {
        var parts = new List<object?>();
        if (separator is null)
        {
            var rest = s.TrimStart();
            while (rest.Length > 0)
            {
                var end = maxSplit >= 0 && parts.Count >= maxSplit ? -1 : IndexOfWhiteSpace(rest);
                if (end < 0)
                {
                    parts.Add(rest.TrimEnd());
                    break;
                }

                parts.Add(rest[..end]);
                rest = rest[end..].TrimStart();
            }

            return parts;
        }

        if (separator.Length == 0)
        {
            throw new ArgumentException("empty separator");
        }

        var from = 0;
        while (maxSplit < 0 || parts.Count < maxSplit)
        {
            var at = s.IndexOf(separator, from, StringComparison.Ordinal);
            if (at < 0)
            {
                break;
            }

            parts.Add(s[from..at]);
            from = at + separator.Length;
        }

        parts.Add(s[from..]);
        return parts;
    }

    private static int IndexOfWhiteSpace(string s)
    {
        for (var i = 0; i < s.Length; i++)
        {
            if (char.IsWhiteSpace(s[i]))
            {
                return i;
            }
        }

        return -1;
    }

    /// <summary><c>str.replace(old, new, count)</c>; <paramref name="count"/> negative replaces all.</summary>
    public static string Replace(string s, string old, string replacement, long count)
    {
        if (count < 0)
        {
            return old.Length == 0 ? string.Join(replacement, ["", .. JinjaValues.StringElements(s).Cast<string>(), ""]) : s.Replace(old, replacement, StringComparison.Ordinal);
        }

        var builder = new StringBuilder();
        var from = 0;
        for (var n = 0; n < count; n++)
        {
            var at = s.IndexOf(old, from, StringComparison.Ordinal);
            if (at < 0 || old.Length == 0)
            {
                break;
            }

            builder.Append(s, from, at - from).Append(replacement);
            from = at + old.Length;
        }

        return builder.Append(s, from, s.Length - from).ToString();
    }

    /// <summary><c>str.title()</c>: a letter after a non-letter is upper case, other letters lower case.</summary>
    public static string Title(string s)
    {
        var builder = new StringBuilder(s.Length);
        var previousIsLetter = false;
        foreach (var c in s)
        {
            builder.Append(previousIsLetter ? char.ToLowerInvariant(c) : char.ToUpperInvariant(c));
            previousIsLetter = char.IsLetter(c);
        }

        return builder.ToString();
    }

    /// <summary>
    /// Jinja's <c>title</c> filter (not <c>str.title</c>): words start after whitespace, <c>-</c>, <c>(</c>, <c>{</c>,
    /// <c>[</c> or <c>&lt;</c>; each word's first character upper case, the rest lower case.
    /// </summary>
    public static string TitleFilter(string s)
    {
        var builder = new StringBuilder(s.Length);
        var wordStart = true;
        foreach (var c in s)
        {
            var boundary = char.IsWhiteSpace(c) || c is '-' or '(' or '{' or '[' or '<';
            builder.Append(boundary ? c : wordStart ? char.ToUpperInvariant(c) : char.ToLowerInvariant(c));
            wordStart = boundary;
        }

        return builder.ToString();
    }

    /// <summary><c>str.capitalize()</c>: the first character upper case, the rest lower case.</summary>
    public static string Capitalize(string s) => s.Length == 0 ? s : char.ToUpperInvariant(s[0]) + s[1..].ToLowerInvariant();

    /// <summary>Python's <c>s[index]</c> by code point (negative from the end); null when out of range.</summary>
    public static string? At(string s, long index)
    {
        var elements = JinjaValues.StringElements(s).ToList();
        var i = index < 0 ? index + elements.Count : index;
        return i >= 0 && i < elements.Count ? (string)elements[(int)i]! : null;
    }
}
