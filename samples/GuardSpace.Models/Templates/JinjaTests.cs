using System.Collections;

namespace GuardSpace.Models.Templates;

/// <summary>The tests of <c>value is name(args)</c> this subset supports, with Jinja's meanings.</summary>
internal static class JinjaTests
{
    private static readonly Dictionary<string, Func<object?, JinjaArgs, int, bool>> Tests = new()
    {
        ["defined"] = (v, _, _) => v is not JinjaUndefined,
        ["undefined"] = (v, _, _) => v is JinjaUndefined,
        ["none"] = (v, _, _) => v is null,
        ["string"] = (v, _, _) => v is string,
        ["number"] = (v, _, _) => v is long or double,
        ["integer"] = (v, _, _) => v is long,
        ["float"] = (v, _, _) => v is double,
        ["boolean"] = (v, _, _) => v is bool,
        ["true"] = (v, _, _) => v is true,
        ["false"] = (v, _, _) => v is false,
        ["mapping"] = (v, _, _) => v is Dictionary<string, object?> and not JinjaNamespace,
        ["iterable"] = (v, _, _) => v is string or ICollection,
        ["sequence"] = (v, _, _) => v is string or ICollection,
        ["callable"] = (v, _, _) => v is JinjaCallable,
        ["odd"] = (v, a, line) => Integer(v, a) % 2 != 0,
        ["even"] = (v, a, line) => Integer(v, a) % 2 == 0,
        ["divisibleby"] = (v, a, line) => Integer(v, a) % (a.Integer(0, "num") ?? throw a.Error("the divisor is missing")) == 0,
        ["eq"] = (v, a, _) => JinjaValues.Equal(v, a.Required(0, "other")),
        ["equalto"] = (v, a, _) => JinjaValues.Equal(v, a.Required(0, "other")),
        ["ne"] = (v, a, _) => !JinjaValues.Equal(v, a.Required(0, "other")),
        ["lt"] = (v, a, line) => JinjaValues.Compare(v, a.Required(0, "other"), line) < 0,
        ["le"] = (v, a, line) => JinjaValues.Compare(v, a.Required(0, "other"), line) <= 0,
        ["gt"] = (v, a, line) => JinjaValues.Compare(v, a.Required(0, "other"), line) > 0,
        ["ge"] = (v, a, line) => JinjaValues.Compare(v, a.Required(0, "other"), line) >= 0,
        ["in"] = (v, a, line) => JinjaOperators.Contains(a.Required(0, "seq"), v, line),
        ["sameas"] = (v, a, _) => a.Required(0, "other") is var other && (ReferenceEquals(v, other) || (v is null or bool && JinjaValues.Equal(v, other) && other is null or bool)),
        ["lower"] = (v, _, _) => v is string s && s == s.ToLowerInvariant(),
        ["upper"] = (v, _, _) => v is string s && s == s.ToUpperInvariant(),
    };

    /// <summary>Every supported test name.</summary>
    public static IReadOnlyCollection<string> Names => Tests.Keys;

    /// <summary>Runs the test <paramref name="name"/> on <paramref name="value"/>.</summary>
    public static bool Apply(string name, object? value, JinjaArgs args, int line) =>
        Tests.TryGetValue(name, out var test) ? test(value, args, line) : throw new TemplateException($"the test '{name}' is not supported by this Jinja subset.", line);

    private static long Integer(object? value, JinjaArgs a) => value as long? ?? throw a.Error($"needs an integer, not a {JinjaValues.TypeName(value)}");
}
