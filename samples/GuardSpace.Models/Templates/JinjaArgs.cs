namespace GuardSpace.Models.Templates;

/// <summary>Evaluated arguments of a filter, test, method or function, read by position or keyword as Python binds them.</summary>
internal sealed class JinjaArgs
{
    private readonly string _callee;
    private readonly int _line;

    /// <summary>Wraps the arguments given to <paramref name="callee"/> on <paramref name="line"/>.</summary>
    public JinjaArgs(string callee, IReadOnlyList<object?> positional, IReadOnlyDictionary<string, object?> keywords, int line)
    {
        _callee = callee;
        Positional = positional;
        Keywords = keywords;
        _line = line;
    }

    /// <summary>Positional arguments.</summary>
    public IReadOnlyList<object?> Positional { get; }

    /// <summary>Keyword arguments.</summary>
    public IReadOnlyDictionary<string, object?> Keywords { get; }

    /// <summary>The argument at <paramref name="index"/> or named <paramref name="name"/>, or <paramref name="fallback"/>.</summary>
    public object? Get(int index, string name, object? fallback = null) =>
        index < Positional.Count ? Positional[index] : Keywords.TryGetValue(name, out var v) ? v : fallback;

    /// <summary>A required argument.</summary>
    public object? Required(int index, string name) =>
        index < Positional.Count || Keywords.ContainsKey(name) ? Get(index, name) : throw Error($"the argument '{name}' is missing");

    /// <summary>A string argument (or <paramref name="fallback"/> when absent or none).</summary>
    public string? String(int index, string name, string? fallback = null) => Get(index, name) switch
    {
        null or JinjaUndefined => fallback,
        string s => s,
        var other => throw Error($"the argument '{name}' must be a string, not a {JinjaValues.TypeName(other)}"),
    };

    /// <summary>An integer argument (or <paramref name="fallback"/>).</summary>
    public long? Integer(int index, string name, long? fallback = null) => Get(index, name) switch
    {
        null or JinjaUndefined => fallback,
        long l => l,
        bool b => b ? 1 : 0,
        var other => throw Error($"the argument '{name}' must be an integer, not a {JinjaValues.TypeName(other)}"),
    };

    /// <summary>A boolean argument, read by truth value.</summary>
    public bool Flag(int index, string name, bool fallback = false) => Get(index, name, fallback) is var v && v is not JinjaUndefined && JinjaValues.Truthy(v);

    /// <summary>An error naming the callee and the line.</summary>
    public TemplateException Error(string problem) => new($"{_callee}: {problem}.", _line);
}
