using System.Text;

namespace GuardSpace.Models.Templates;

/// <summary>Operators, attribute and item lookup, and slicing with Python's semantics.</summary>
internal static class JinjaOperators
{
    /// <summary><c>left op right</c> for the arithmetic, comparison, <c>~</c> and <c>in</c> operators.</summary>
    public static object? Binary(string op, object? left, object? right, int line)
    {
        if (op is "==" or "!=")
        {
            return JinjaValues.Equal(left, right) == (op == "==");
        }

        if (op is "in" or "not in")
        {
            return Contains(right, left, line) == (op == "in");
        }

        if (op == "~")
        {
            return JinjaValues.Str(left) + JinjaValues.Str(right);
        }

        if (left is JinjaUndefined u || right is JinjaUndefined)
        {
            var missing = left as JinjaUndefined ?? (JinjaUndefined)right!;
            throw new TemplateException($"'{missing.Name}' is undefined (used with '{op}').", line);
        }

        if (op is "<" or ">" or "<=" or ">=")
        {
            var c = JinjaValues.Compare(left, right, line);
            return op switch { "<" => c < 0, ">" => c > 0, "<=" => c <= 0, _ => c >= 0 };
        }

        return (op, left, right) switch
        {
            ("+", string a, string b) => a + b,
            ("+", List<object?> a, List<object?> b) => a.Concat(b).ToList(),
            ("*", string a, long n) => string.Concat(Enumerable.Repeat(a, (int)Math.Max(0, n))),
            ("*", List<object?> a, long n) => Enumerable.Repeat(a, (int)Math.Max(0, n)).SelectMany(x => x).ToList(),
            (_, long a, long b) => Integers(op, a, b, line),
            (_, long or double or bool, long or double or bool) => Floats(op, ToDouble(left), ToDouble(right), line),
            _ => throw new TemplateException($"'{op}' cannot combine a {JinjaValues.TypeName(left)} and a {JinjaValues.TypeName(right)} (use '~' to join text to a number).", line),
        };
    }

    private static double ToDouble(object? v) => v switch { long l => l, double d => d, bool b => b ? 1 : 0, _ => 0 };

    // Arms are boxed one by one: a switch over long and double arms would be typed double.
    private static object Integers(string op, long a, long b, int line) => op switch
    {
        "+" => (object)(a + b),
        "-" => a - b,
        "*" => a * b,
        "/" => b == 0 ? throw new TemplateException("division by zero.", line) : (object)((double)a / b),
        "//" => b == 0 ? throw new TemplateException("division by zero.", line) : (long)Math.Floor((double)a / b),
        "%" => b == 0 ? throw new TemplateException("modulo by zero.", line) : ((a % b) + b) % b,
        "**" => b >= 0 ? (long)Math.Pow(a, b) : (object)Math.Pow(a, b),
        _ => throw new TemplateException($"unknown operator '{op}'.", line),
    };

    private static object Floats(string op, double a, double b, int line) => op switch
    {
        "+" => a + b,
        "-" => a - b,
        "*" => a * b,
        "/" => b == 0 ? throw new TemplateException("division by zero.", line) : a / b,
        "//" => b == 0 ? throw new TemplateException("division by zero.", line) : Math.Floor(a / b),
        "%" => b == 0 ? throw new TemplateException("modulo by zero.", line) : a - (b * Math.Floor(a / b)),
        "**" => Math.Pow(a, b),
        _ => throw new TemplateException($"unknown operator '{op}'.", line),
    };

    /// <summary>Python's <c>item in container</c>: substring, list member or mapping key.</summary>
    public static bool Contains(object? container, object? item, int line) => container switch
    {
        string s when item is string sub => s.Contains(sub, StringComparison.Ordinal),
        string => throw new TemplateException($"'in <string>' needs a string on the left, not a {JinjaValues.TypeName(item)}.", line),
        Dictionary<string, object?> d => item is string key && d.ContainsKey(key),
        List<object?> list => list.Any(x => JinjaValues.Equal(x, item)),
        JinjaUndefined u => throw new TemplateException($"'{u.Name}' is undefined (used with 'in').", line),
        _ => throw new TemplateException($"'in' needs a string, list or mapping on the right, not a {JinjaValues.TypeName(container)}.", line),
    };

    /// <summary><c>target.name</c>: a mapping's method or key, a string's method; otherwise undefined.</summary>
    public static object? Attribute(object? target, string name, string description, int line)
    {
        switch (target)
        {
            case JinjaUndefined u:
                throw new TemplateException($"'{u.Name}' is undefined, so it has no attribute '{name}'.", line);
            case null:
                throw new TemplateException($"'{description}' is none, so it has no attribute '{name}'.", line);
            case Dictionary<string, object?> d when target is JinjaNamespace || !JinjaMethods.IsMappingMethod(name):
                return d.TryGetValue(name, out var value) ? value : new JinjaUndefined($"{description}.{name}");
            case List<object?> list when long.TryParse(name, out var index):
                return Item(list, index, description, line);
            default:
                return (object?)JinjaMethods.Bind(target, name, line) ?? new JinjaUndefined($"{description}.{name}");
        }
    }

    /// <summary><c>target[key]</c>: a mapping's key, a list's or string's index (negative from the end); otherwise undefined.</summary>
    public static object? Item(object? target, object? key, string description, int line) => (target, key) switch
    {
        (JinjaUndefined u, _) => throw new TemplateException($"'{u.Name}' is undefined, so it cannot be indexed.", line),
        (null, _) => throw new TemplateException($"'{description}' is none, so it cannot be indexed.", line),
        (Dictionary<string, object?> d, string k) => d.TryGetValue(k, out var value) ? value : target is JinjaNamespace ? new JinjaUndefined($"{description}[{JinjaValues.Repr(k)}]") : (object?)JinjaMethods.Bind(target, k, line) ?? new JinjaUndefined($"{description}[{JinjaValues.Repr(k)}]"),
        (List<object?> list, long i) => i + (i < 0 ? list.Count : 0) is var j && j >= 0 && j < list.Count ? list[(int)j] : new JinjaUndefined($"{description}[{i}]"),
        (string s, long i) => (object?)JinjaStrings.At(s, i) ?? new JinjaUndefined($"{description}[{i}]"),
        (string s, string name) => (object?)JinjaMethods.Bind(s, name, line) ?? new JinjaUndefined($"{description}[{JinjaValues.Repr(name)}]"),
        _ => new JinjaUndefined($"{description}[{JinjaValues.Repr(key)}]"),
    };

    /// <summary>Python's <c>target[start:stop:step]</c> on a list or a string.</summary>
    public static object? Slice(object? target, long? start, long? stop, long? step, int line)
    {
        var elements = target switch
        {
            List<object?> list => list,
            string s => [.. JinjaValues.StringElements(s)],
            _ => throw new TemplateException($"a {JinjaValues.TypeName(target)} cannot be sliced.", line),
        };
        var n = elements.Count;
        var by = step ?? 1;
        if (by == 0)
        {
            throw new TemplateException("a slice step cannot be zero.", line);
        }

        long Clamp(long? value, long fallback, long low, long high) =>
            value is not { } v ? fallback : Math.Clamp(v < 0 ? v + n : v, low, high);
        var picked = new List<object?>();
        if (by > 0)
        {
            for (var i = Clamp(start, 0, 0, n); i < Clamp(stop, n, 0, n); i += by)
            {
                picked.Add(elements[(int)i]);
            }
        }
        else
        {
            for (var i = Clamp(start, n - 1, -1, n - 1); i > Clamp(stop, -1, -1, n - 1); i += by)
            {
                picked.Add(elements[(int)i]);
            }
        }

        return target is string ? picked.Aggregate(new StringBuilder(), (b, c) => b.Append((string)c!)).ToString() : picked;
    }
}
