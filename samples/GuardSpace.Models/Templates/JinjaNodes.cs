namespace GuardSpace.Models.Templates;

/// <summary>A parsed template statement; <see cref="Line"/> is where it starts (for error messages).</summary>
internal abstract record JinjaNode(int Line);

/// <summary>Literal text.</summary>
internal sealed record TextNode(string Text, int Line) : JinjaNode(Line);

/// <summary><c>{{ expression }}</c></summary>
internal sealed record OutputNode(JinjaExpr Value, int Line) : JinjaNode(Line);

/// <summary><c>{% if %}</c> with its <c>elif</c> branches and optional <c>else</c>.</summary>
internal sealed record IfNode(IReadOnlyList<(JinjaExpr Condition, IReadOnlyList<JinjaNode> Body)> Branches, IReadOnlyList<JinjaNode> Else, int Line) : JinjaNode(Line);

/// <summary><c>{% for a, b in items if cond %}...{% else %}...{% endfor %}</c></summary>
internal sealed record ForNode(IReadOnlyList<string> Targets, JinjaExpr Items, JinjaExpr? Filter, IReadOnlyList<JinjaNode> Body, IReadOnlyList<JinjaNode> Else, int Line) : JinjaNode(Line);

/// <summary><c>{% set name = value %}</c>, <c>{% set ns.attr = value %}</c>, <c>{% set a, b = pair %}</c> or the block form (<c>Value</c> null, <c>Body</c> set).</summary>
internal sealed record SetNode(IReadOnlyList<string> Targets, string? Attribute, JinjaExpr? Value, IReadOnlyList<JinjaNode>? Body, int Line) : JinjaNode(Line);

/// <summary><c>{% macro name(params) %}...{% endmacro %}</c></summary>
internal sealed record MacroNode(string Name, IReadOnlyList<(string Name, JinjaExpr? Default)> Parameters, IReadOnlyList<JinjaNode> Body, int Line) : JinjaNode(Line);

/// <summary><c>{% break %}</c> or <c>{% continue %}</c>.</summary>
internal sealed record LoopControlNode(bool IsBreak, int Line) : JinjaNode(Line);

/// <summary>A body rendered as it stands (<c>{% generation %}</c>, which only marks assistant text for masks).</summary>
internal sealed record BlockNode(IReadOnlyList<JinjaNode> Body, int Line) : JinjaNode(Line);

/// <summary>A parsed expression.</summary>
internal abstract record JinjaExpr(int Line);

/// <summary>A constant: string, number, boolean, none.</summary>
internal sealed record LiteralExpr(object? Value, int Line) : JinjaExpr(Line);

/// <summary>A variable.</summary>
internal sealed record NameExpr(string Name, int Line) : JinjaExpr(Line);

/// <summary><c>[a, b]</c> or <c>(a, b)</c>.</summary>
internal sealed record ListExpr(IReadOnlyList<JinjaExpr> Items, int Line) : JinjaExpr(Line);

/// <summary><c>{key: value}</c></summary>
internal sealed record DictExpr(IReadOnlyList<(JinjaExpr Key, JinjaExpr Value)> Items, int Line) : JinjaExpr(Line);

/// <summary><c>obj.name</c></summary>
internal sealed record AttributeExpr(JinjaExpr Target, string Name, int Line) : JinjaExpr(Line);

/// <summary><c>obj[key]</c></summary>
internal sealed record IndexExpr(JinjaExpr Target, JinjaExpr Key, int Line) : JinjaExpr(Line);

/// <summary><c>obj[start:stop:step]</c></summary>
internal sealed record SliceExpr(JinjaExpr Target, JinjaExpr? Start, JinjaExpr? Stop, JinjaExpr? Step, int Line) : JinjaExpr(Line);

/// <summary><c>f(args, name=value)</c></summary>
internal sealed record CallExpr(JinjaExpr Target, JinjaArguments Arguments, int Line) : JinjaExpr(Line);

/// <summary><c>value | name(args)</c></summary>
internal sealed record FilterExpr(JinjaExpr Value, string Name, JinjaArguments Arguments, int Line) : JinjaExpr(Line);

/// <summary><c>value is [not] name(args)</c></summary>
internal sealed record TestExpr(JinjaExpr Value, string Name, bool Negated, JinjaArguments Arguments, int Line) : JinjaExpr(Line);

/// <summary>A binary operator (arithmetic, comparison, <c>and</c>, <c>or</c>, <c>in</c>, <c>not in</c>, <c>~</c>).</summary>
internal sealed record BinaryExpr(string Operator, JinjaExpr Left, JinjaExpr Right, int Line) : JinjaExpr(Line);

/// <summary><c>not x</c>, <c>-x</c>, <c>+x</c>.</summary>
internal sealed record UnaryExpr(string Operator, JinjaExpr Operand, int Line) : JinjaExpr(Line);

/// <summary><c>a if condition else b</c> (<c>Else</c> null: undefined).</summary>
internal sealed record ConditionalExpr(JinjaExpr Condition, JinjaExpr Then, JinjaExpr? Else, int Line) : JinjaExpr(Line);

/// <summary>Positional and keyword arguments of a call, filter or test.</summary>
internal sealed record JinjaArguments(IReadOnlyList<JinjaExpr> Positional, IReadOnlyList<(string Name, JinjaExpr Value)> Keywords)
{
    /// <summary>No arguments.</summary>
    public static readonly JinjaArguments None = new([], []);
}
