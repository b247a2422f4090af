using System.Globalization;

namespace GuardSpace.Models.Templates;

/// <summary>The filters of <c>value | name(args)</c> this subset supports, with Jinja's (and Hugging Face's <c>tojson</c>) meanings.</summary>
internal static class JinjaFilters
{
    private static readonly Dictionary<string, Func<object?, JinjaArgs, int, object?>> Filters = new()
    {
        ["trim"] = (v, a, l) => JinjaStrings.Strip(Text(v, a), a.String(0, "chars"), left: true, right: true),
        ["length"] = (v, _, l) => JinjaValues.Length(v, l),
        ["count"] = (v, _, l) => JinjaValues.Length(v, l),
        ["tojson"] = (v, a, l) => JinjaJson.Serialize(v, (int?)a.Integer(0, "indent"), a.Flag(99, "sort_keys"), l),
        ["items"] = (v, a, l) => v is JinjaUndefined ? [] : Mapping(v, a).Select(p => (object?)new List<object?> { p.Key, p.Value }).ToList(),
        ["dictsort"] = (v, a, l) => Mapping(v, a).OrderBy(p => p.Key.ToLowerInvariant(), StringComparer.Ordinal).Select(p => (object?)new List<object?> { p.Key, p.Value }).ToList(),
        ["default"] = Default,
        ["d"] = Default,
        ["upper"] = (v, a, _) => Text(v, a).ToUpperInvariant(),
        ["lower"] = (v, a, _) => Text(v, a).ToLowerInvariant(),
        ["title"] = (v, a, _) => JinjaStrings.TitleFilter(Text(v, a)),
        ["capitalize"] = (v, a, _) => JinjaStrings.Capitalize(Text(v, a)),
        ["replace"] = (v, a, _) => JinjaStrings.Replace(Text(v, a), a.String(0, "old") ?? "", a.String(1, "new") ?? "", a.Integer(2, "count", -1)!.Value),
        ["string"] = (v, _, _) => JinjaValues.Str(v),
        ["safe"] = (v, _, _) => v,
        ["list"] = (v, _, l) => JinjaValues.Iterate(v, l).ToList(),
        ["first"] = (v, _, l) => JinjaValues.Iterate(v, l) is { Count: > 0 } items ? items[0] : new JinjaUndefined("first of an empty sequence"),
        ["last"] = (v, _, l) => JinjaValues.Iterate(v, l) is { Count: > 0 } items ? items[^1] : new JinjaUndefined("last of an empty sequence"),
        ["reverse"] = (v, _, l) => v is string s ? JinjaOperators.Slice(s, null, null, -1, l) : Enumerable.Reverse(JinjaValues.Iterate(v, l)).ToList(),
        ["join"] = (v, a, l) => string.Join(a.String(0, "d", ""), JinjaValues.Iterate(v, l).Select(x => JinjaValues.Str(a.String(1, "attribute") is { } attr ? JinjaOperators.Attribute(x, attr, "item", l) : x))),
        ["map"] = Map,
        ["selectattr"] = (v, a, l) => Select(v, a, l, byAttribute: true, keep: true),
        ["rejectattr"] = (v, a, l) => Select(v, a, l, byAttribute: true, keep: false),
        ["select"] = (v, a, l) => Select(v, a, l, byAttribute: false, keep: true),
        ["reject"] = (v, a, l) => Select(v, a, l, byAttribute: false, keep: false),
        ["unique"] = (v, a, l) => JinjaValues.Iterate(v, l).DistinctBy(x => SortKey(x, a.Flag(0, "case_sensitive")), StringComparer.Ordinal).ToList(),
        ["sort"] = (v, a, l) => Sort(v, a, l),
        ["int"] = (v, a, _) => ToInteger(v, a.Integer(0, "default", 0)!.Value),
        ["float"] = (v, _, _) => v switch { long n => (double)n, double d => d, string s when double.TryParse(s, NumberStyles.Float, CultureInfo.InvariantCulture, out var d) => d, _ => 0.0 },
        ["abs"] = (v, a, _) => v switch { long n => (object)Math.Abs(n), double d => Math.Abs(d), _ => throw a.Error($"needs a number, not a {JinjaValues.TypeName(v)}") },
        ["round"] = (v, a, _) => Math.Round(v is long n ? n : v as double? ?? throw a.Error("needs a number"), (int)a.Integer(0, "precision", 0)!.Value, MidpointRounding.AwayFromZero),
        ["sum"] = (v, a, l) => JinjaValues.Iterate(v, l).Aggregate(a.Get(1, "start", 0L), (total, x) => JinjaOperators.Binary("+", total, a.String(0, "attribute") is { } attr ? JinjaOperators.Attribute(x, attr, "item", l) : x, l)),
        ["min"] = (v, _, l) => JinjaValues.Iterate(v, l).Aggregate((x, y) => JinjaValues.Compare(y, x, l) < 0 ? y : x),
        ["max"] = (v, _, l) => JinjaValues.Iterate(v, l).Aggregate((x, y) => JinjaValues.Compare(y, x, l) > 0 ? y : x),
        ["indent"] = Indent,
    };

    /// <summary>Every supported filter name.</summary>
    public static IReadOnlyCollection<string> Names => Filters.Keys;

    /// <summary>Applies the filter <paramref name="name"/> to <paramref name="value"/>.</summary>
    public static object? Apply(string name, object? value, JinjaArgs args, int line) =>
        Filters.TryGetValue(name, out var filter) ? filter(value, args, line) : throw new TemplateException($"the filter '{name}' is not supported by this Jinja subset.", line);

    private static string Text(object? value, JinjaArgs a) => value switch
    {
        string s => s,
        JinjaUndefined => "",
        _ => JinjaValues.Str(value),
    };

    private static Dictionary<string, object?> Mapping(object? value, JinjaArgs a) =>
        value as Dictionary<string, object?> ?? throw a.Error($"needs a mapping, not a {JinjaValues.TypeName(value)}");

    private static object? Default(object? value, JinjaArgs a, int line) =>
        value is JinjaUndefined || (a.Flag(1, "boolean") && !JinjaValues.Truthy(value)) ? a.Get(0, "default_value", "") : value;

    private static List<object?> Map(object? value, JinjaArgs a, int line)
    {
        var items = JinjaValues.Iterate(value, line);
        if (a.Keywords.TryGetValue("attribute", out var attribute))
        {
            var name = attribute as string ?? throw a.Error("'attribute' must be a string");
            return [.. items.Select(x => JinjaOperators.Attribute(x, name, "item", line) is JinjaUndefined && a.Keywords.TryGetValue("default", out var d) ? d : JinjaOperators.Attribute(x, name, "item", line))];
        }

        var filter = a.String(0, "filter") ?? throw a.Error("give a filter name or attribute=...");
        var rest = new JinjaArgs($"map('{filter}')", [.. a.Positional.Skip(1)], a.Keywords, line);
        return [.. items.Select(x => Apply(filter, x, rest, line))];
    }

    private static List<object?> Select(object? value, JinjaArgs a, int line, bool byAttribute, bool keep)
    {
        var offset = byAttribute ? 1 : 0;
        var attribute = byAttribute ? a.String(0, "attribute") ?? throw a.Error("the attribute name is missing") : null;
        var test = a.String(offset, "test");
        var testArgs = new JinjaArgs($"test '{test}'", [.. a.Positional.Skip(offset + 1)], new Dictionary<string, object?>(), line);
        return [.. JinjaValues.Iterate(value, line).Where(item =>
        {
            var subject = attribute is null ? item : JinjaOperators.Attribute(item, attribute, "item", line);
            return (test is null ? JinjaValues.Truthy(subject) : JinjaTests.Apply(test, subject, testArgs, line)) == keep;
        })];
    }

    private static List<object?> Sort(object? value, JinjaArgs a, int line)
    {
        var attribute = a.String(2, "attribute");
        var caseSensitive = a.Flag(1, "case_sensitive");
        object? Key(object? x)
        {
            var subject = attribute is null ? x : JinjaOperators.Attribute(x, attribute, "item", line);
            return subject is string s && !caseSensitive ? s.ToLowerInvariant() : subject;
        }

        var sorted = JinjaValues.Iterate(value, line).Order(Comparer<object?>.Create((x, y) => JinjaValues.Compare(Key(x), Key(y), line))).ToList();
        if (a.Flag(0, "reverse"))
        {
            sorted.Reverse();
        }

        return sorted;
    }

    private static string SortKey(object? value, bool caseSensitive) =>
        value is string s && !caseSensitive ? s.ToLowerInvariant() : JinjaValues.Repr(value);

    private static long ToInteger(object? value, long fallback) => value switch
    {
        long n => n,
        double d => (long)d,
        bool b => b ? 1 : 0,
        string s when long.TryParse(s.Trim(), NumberStyles.Integer, CultureInfo.InvariantCulture, out var n) => n,
        string s when double.TryParse(s.Trim(), NumberStyles.Float, CultureInfo.InvariantCulture, out var d) => (long)d,
        _ => fallback,
    };

    private static string Indent(object? value, JinjaArgs a, int line)
    {
        var width = a.Get(0, "width", 4L);
        var pad = width as string ?? new string(' ', (int)(width as long? ?? throw a.Error("'width' must be an integer or a string")));
        var lines = Text(value, a).Split('\n');
        var blank = a.Flag(2, "blank");
        for (var i = 0; i < lines.Length; i++)
        {
            if ((i > 0 || a.Flag(1, "first")) && (blank || lines[i].Trim().Length > 0))
            {
                lines[i] = pad + lines[i];
            }
        }

        return string.Join('\n', lines);
    }
}
