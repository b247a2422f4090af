namespace GuardSpace.Models.Templates;

/// <summary>Methods a template may call on a value: Python's string methods and <c>dict.items/keys/values/get</c>.</summary>
internal static class JinjaMethods
{
    private static readonly HashSet<string> MappingMethods = ["items", "keys", "values", "get"];

    /// <summary>True when <paramref name="name"/> is a method of mappings (attribute lookup finds it before a key of that name, as in Python).</summary>
    public static bool IsMappingMethod(string name) => MappingMethods.Contains(name);

    /// <summary>The method <paramref name="name"/> bound to <paramref name="target"/>, or null when it has none.</summary>
    public static JinjaCallable? Bind(object? target, string name, int line) => target switch
    {
        string s => StringMethod(s, name, line),
        Dictionary<string, object?> d when target is not JinjaNamespace && MappingMethods.Contains(name) => (args, kwargs) =>
        {
            var a = new JinjaArgs($"dict.{name}()", args, kwargs, line);
            return name switch
            {
                "items" => d.Select(p => (object?)new List<object?> { p.Key, p.Value }).ToList(),
                "keys" => d.Keys.Cast<object?>().ToList(),
                "values" => d.Values.ToList(),
                _ => a.Required(0, "key") is string key && d.TryGetValue(key, out var v) ? v : a.Get(1, "default"),
            };
        },
        _ => null,
    };

    private static JinjaCallable? StringMethod(string s, string name, int line)
    {
        Func<JinjaArgs, object?>? method = name switch
        {
            "startswith" => a => Prefixes(a).Any(p => s.StartsWith(p, StringComparison.Ordinal)),
            "endswith" => a => Prefixes(a).Any(p => s.EndsWith(p, StringComparison.Ordinal)),
            "strip" => a => JinjaStrings.Strip(s, a.String(0, "chars"), left: true, right: true),
            "lstrip" => a => JinjaStrings.Strip(s, a.String(0, "chars"), left: true, right: false),
            "rstrip" => a => JinjaStrings.Strip(s, a.String(0, "chars"), left: false, right: true),
            "split" => a => JinjaStrings.Split(s, a.String(0, "sep"), a.Integer(1, "maxsplit", -1)!.Value),
            "replace" => a => JinjaStrings.Replace(s, a.String(0, "old") ?? throw a.Error("'old' is missing"), a.String(1, "new") ?? throw a.Error("'new' is missing"), a.Integer(2, "count", -1)!.Value),
            "upper" => _ => s.ToUpperInvariant(),
            "lower" => _ => s.ToLowerInvariant(),
            "title" => _ => JinjaStrings.Title(s),
            "capitalize" => _ => JinjaStrings.Capitalize(s),
            "find" => a => (long)s.IndexOf(a.String(0, "sub") ?? "", StringComparison.Ordinal),
            "count" => a => (long)JinjaStrings.Split(s, a.String(0, "sub") ?? throw a.Error("'sub' is missing"), -1).Count - 1,
            "join" => a => string.Join(s, JinjaValues.Iterate(a.Required(0, "iterable"), line).Select(JinjaValues.Str)),
            "splitlines" => _ => s.Split('\n').Select(l => (object?)l.TrimEnd('\r')).Take(s.EndsWith('\n') ? s.Split('\n').Length - 1 : int.MaxValue).ToList(),
            "isdigit" => _ => s.Length > 0 && s.All(char.IsDigit),
            "isspace" => _ => s.Length > 0 && s.All(char.IsWhiteSpace),
            _ => null,
        };
        return method is null ? null : (args, kwargs) => method(new JinjaArgs($"str.{name}()", args, kwargs, line));
    }

    private static IEnumerable<string> Prefixes(JinjaArgs a) => a.Required(0, "prefix") switch
    {
        string p => [p],
        List<object?> list => list.Select(x => x as string ?? throw a.Error("every prefix must be a string")),
        var other => throw a.Error($"the prefix must be a string or a tuple of strings, not a {JinjaValues.TypeName(other)}"),
    };
}
