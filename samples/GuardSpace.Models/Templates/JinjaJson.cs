using System.Globalization;
using System.Text;

namespace GuardSpace.Models.Templates;

/// <summary>
/// The <c>tojson</c> filter as Hugging Face's templates define it: Python's <c>json.dumps</c> with
/// <c>ensure_ascii=False</c>: separators <c>", "</c> and <c>": "</c> (or <c>","</c> and newlines with <c>indent</c>),
/// keys in insertion order unless <c>sort_keys</c>.
/// </summary>
internal static class JinjaJson
{
    /// <summary>The JSON text of <paramref name="value"/>.</summary>
    public static string Serialize(object? value, int? indent, bool sortKeys, int line)
    {
        var builder = new StringBuilder();
        Write(builder, value, indent, sortKeys, 0, line);
        return builder.ToString();
    }

    private static void Write(StringBuilder b, object? value, int? indent, bool sortKeys, int depth, int line)
    {
        switch (value)
        {
            case null:
                b.Append("null");
                break;
            case bool flag:
                b.Append(flag ? "true" : "false");
                break;
            case long l:
                b.Append(l.ToString(CultureInfo.InvariantCulture));
                break;
            case double d:
                b.Append(double.IsNaN(d) ? "NaN" : double.IsInfinity(d) ? (d > 0 ? "Infinity" : "-Infinity") : JinjaValues.Repr(d));
                break;
            case string s:
                WriteString(b, s);
                break;
            case JinjaNamespace:
                throw new TemplateException("tojson: a namespace is not JSON serializable.", line);
            case Dictionary<string, object?> d:
                var pairs = sortKeys ? d.OrderBy(p => p.Key, StringComparer.Ordinal).ToList() : [.. d];
                WriteItems(b, '{', '}', pairs.Count, indent, depth, i =>
                {
                    WriteString(b, pairs[i].Key);
                    b.Append(": ");
                    Write(b, pairs[i].Value, indent, sortKeys, depth + 1, line);
                });
                break;
            case List<object?> list:
                WriteItems(b, '[', ']', list.Count, indent, depth, i => Write(b, list[i], indent, sortKeys, depth + 1, line));
                break;
            default:
                throw new TemplateException($"tojson: a {JinjaValues.TypeName(value)} is not JSON serializable.", line);
        }
    }

    private static void WriteItems(StringBuilder b, char open, char close, int count, int? indent, int depth, Action<int> writeItem)
    {
        b.Append(open);
        if (count == 0)
        {
            b.Append(close);
            return;
        }

        for (var i = 0; i < count; i++)
        {
            if (indent is { } n)
            {
                b.Append(i == 0 ? "" : ",").Append('\n').Append(' ', n * (depth + 1));
            }
            else if (i > 0)
            {
                b.Append(", ");
            }

            writeItem(i);
        }

        if (indent is { } m)
        {
            b.Append('\n').Append(' ', m * depth);
        }

        b.Append(close);
    }

    private static void WriteString(StringBuilder b, string s)
    {
        b.Append('"');
        foreach (var c in s)
        {
            _ = c switch
            {
                '"' => b.Append("\\\""),
                '\\' => b.Append("\\\\"),
                '\n' => b.Append("\\n"),
                '\r' => b.Append("\\r"),
                '\t' => b.Append("\\t"),
                '\b' => b.Append("\\b"),
                '\f' => b.Append("\\f"),
                < ' ' => b.Append("\\u").Append(((int)c).ToString("x4", CultureInfo.InvariantCulture)),
                _ => b.Append(c),
            };
        }

        b.Append('"');
    }
}
