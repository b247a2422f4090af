using System.Collections;
using System.Globalization;
using System.Text;

namespace GuardSpace.Models.Templates;

/// <summary>A variable or attribute that does not exist: prints as nothing, is false, iterates as empty (Jinja's default <c>Undefined</c>).</summary>
internal sealed class JinjaUndefined
{
    /// <summary>Creates the value for the missing <paramref name="name"/>.</summary>
    public JinjaUndefined(string name) => Name = name;

    /// <summary>What was looked up (for error messages).</summary>
    public string Name { get; }
}

/// <summary>The object <c>namespace(...)</c> returns: attributes that <c>{% set ns.x = ... %}</c> may change from inside a loop.</summary>
internal sealed class JinjaNamespace : Dictionary<string, object?>
{
}

/// <summary>A function a template can call: a global, a macro, or a bound method such as <c>'text'.strip</c>.</summary>
internal delegate object? JinjaCallable(IReadOnlyList<object?> args, IReadOnlyDictionary<string, object?> kwargs);

/// <summary>
/// The value model of the interpreter, with Python's semantics: <c>null</c> is <c>none</c>, numbers are <see cref="long"/>
/// or <see cref="double"/>, lists are <see cref="List{T}"/> of object, mappings <see cref="Dictionary{TKey,TValue}"/> with
/// string keys (insertion-ordered), plus <see cref="JinjaUndefined"/>, <see cref="JinjaNamespace"/> and
/// <see cref="JinjaCallable"/>.
/// </summary>
internal static class JinjaValues
{
    /// <summary>Converts a caller's .NET value (strings, numbers, booleans, lists, dictionaries, <see cref="ChatMessage"/>s) to the value model.</summary>
    public static object? FromDotNet(object? value) => value switch
    {
        null or string or bool or long or double or JinjaUndefined or JinjaNamespace or JinjaCallable => value,
        int or short or byte or uint or ushort or sbyte => Convert.ToInt64(value, CultureInfo.InvariantCulture),
        float f => (double)f,
        decimal m => (double)m,
        ChatMessage message => message.ToDictionary(),
        IDictionary dictionary => dictionary.Keys.Cast<object>().ToDictionary(
            k => k as string ?? throw new ArgumentException($"Template variables: mapping keys must be strings, not {k.GetType().Name}."),
            k => FromDotNet(dictionary[k])),
        IEnumerable items => items.Cast<object?>().Select(FromDotNet).ToList(),
        _ => throw new ArgumentException($"Template variables: a {value.GetType().Name} cannot be passed to a template (use strings, numbers, booleans, lists and dictionaries)."),
    };

    /// <summary>Python's truth value.</summary>
    public static bool Truthy(object? value) => value switch
    {
        null or JinjaUndefined => false,
        bool b => b,
        long l => l != 0,
        double d => d != 0,
        string s => s.Length > 0,
        ICollection c => c.Count > 0,
        _ => true,
    };

    /// <summary>The name of the value's type, as Python would say it.</summary>
    public static string TypeName(object? value) => value switch
    {
        null => "none",
        JinjaUndefined => "undefined",
        bool => "boolean",
        long => "integer",
        double => "float",
        string => "string",
        JinjaNamespace => "namespace",
        Dictionary<string, object?> => "mapping",
        List<object?> => "list",
        JinjaCallable => "function",
        _ => value.GetType().Name,
    };

    /// <summary>Python's <c>str()</c>: what <c>{{ value }}</c> prints.</summary>
    public static string Str(object? value) => value switch
    {
        string s => s,
        JinjaUndefined => "",
        _ => Repr(value),
    };

    /// <summary>Python's <c>repr()</c> (lists and mappings print their items this way).</summary>
    public static string Repr(object? value) => value switch
    {
        null => "None",
        JinjaUndefined => "",
        bool b => b ? "True" : "False",
        long l => l.ToString(CultureInfo.InvariantCulture),
        double d => FloatRepr(d),
        string s => StringRepr(s),
        JinjaNamespace ns => "<Namespace " + string.Join(", ", ns.Select(p => $"{p.Key}={Repr(p.Value)}")) + ">",
        Dictionary<string, object?> d => "{" + string.Join(", ", d.Select(p => $"{StringRepr(p.Key)}: {Repr(p.Value)}")) + "}",
        List<object?> list => "[" + string.Join(", ", list.Select(Repr)) + "]",
        JinjaCallable => "<function>",
        _ => value.ToString() ?? "",
    };

    private static string FloatRepr(double d)
    {
        if (double.IsNaN(d))
        {
            return "nan";
        }

        if (double.IsInfinity(d))
        {
            return d > 0 ? "inf" : "-inf";
        }

        var text = d.ToString("R", CultureInfo.InvariantCulture);
        return text.Contains('.', StringComparison.Ordinal) || text.Contains('E', StringComparison.Ordinal) ? text.Replace("E", "e", StringComparison.Ordinal) : text + ".0";
    }

    private static string StringRepr(string s)
    {
        var quote = s.Contains('\'', StringComparison.Ordinal) && !s.Contains('"', StringComparison.Ordinal) ? '"' : '\'';
        var builder = new StringBuilder().Append(quote);
        foreach (var c in s)
        {
            _ = c switch
            {
                '\\' => builder.Append("\\\\"),
                '\n' => builder.Append("\\n"),
                '\r' => builder.Append("\\r"),
                '\t' => builder.Append("\\t"),
                _ when c == quote => builder.Append('\\').Append(c),
                _ => builder.Append(c),
            };
        }

        return builder.Append(quote).ToString();
    }

    /// <summary>Python's <c>==</c>.</summary>
    public static bool Equal(object? a, object? b) => (a, b) switch
    {
        (null, null) => true,
        (JinjaUndefined, JinjaUndefined) => true,
        (bool x, bool y) => x == y,
        (long x, long y) => x == y,
        (long or double, long or double) when a is not bool && b is not bool => Convert.ToDouble(a, CultureInfo.InvariantCulture) == Convert.ToDouble(b, CultureInfo.InvariantCulture),
        (string x, string y) => string.Equals(x, y, StringComparison.Ordinal),
        (List<object?> x, List<object?> y) => x.Count == y.Count && x.Zip(y).All(p => Equal(p.First, p.Second)),
        (Dictionary<string, object?> x, Dictionary<string, object?> y) => x.Count == y.Count && x.All(p => y.TryGetValue(p.Key, out var v) && Equal(p.Value, v)),
        _ => ReferenceEquals(a, b),
    };

    /// <summary>Python's ordering of two numbers or two strings; anything else is an error.</summary>
    public static int Compare(object? a, object? b, int line) => (a, b) switch
    {
        (string x, string y) => string.CompareOrdinal(x, y),
        (long x, long y) => x.CompareTo(y),
        (long or double or bool, long or double or bool) => Convert.ToDouble(a, CultureInfo.InvariantCulture).CompareTo(Convert.ToDouble(b, CultureInfo.InvariantCulture)),
        _ => throw new TemplateException($"cannot order a {TypeName(a)} and a {TypeName(b)}.", line),
    };

    /// <summary>The items a <c>for</c> loop or a filter walks: list items, mapping keys, string characters (undefined: none).</summary>
    public static List<object?> Iterate(object? value, int line) => value switch
    {
        List<object?> list => list,
        Dictionary<string, object?> d => [.. d.Keys],
        string s => [.. StringElements(s)],
        JinjaUndefined => [],
        _ => throw new TemplateException($"cannot iterate over a {TypeName(value)}.", line),
    };

    /// <summary>The characters of <paramref name="s"/> as Python sees them (a surrogate pair is one character).</summary>
    public static IEnumerable<object?> StringElements(string s)
    {
        for (var i = 0; i < s.Length; i += char.IsSurrogatePair(s, i) ? 2 : 1)
        {
            yield return char.IsSurrogatePair(s, i) ? s.Substring(i, 2) : s[i].ToString();
        }
    }

    /// <summary>Python's <c>len()</c>.</summary>
    public static long Length(object? value, int line) => value switch
    {
        string s => s.EnumerateRunes().Count(),
        ICollection c => c.Count,
        JinjaUndefined => 0,
        _ => throw new TemplateException($"a {TypeName(value)} has no length.", line),
    };
}
