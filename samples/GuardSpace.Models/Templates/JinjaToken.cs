namespace GuardSpace.Models.Templates;

/// <summary>The kinds of token the template lexer produces.</summary>
internal enum JinjaTokenKind
{
    /// <summary>Literal text between tags (after whitespace control).</summary>
    Text,

    /// <summary><c>{{</c></summary>
    OutputOpen,

    /// <summary><c>}}</c></summary>
    OutputClose,

    /// <summary><c>{%</c></summary>
    StatementOpen,

    /// <summary><c>%}</c></summary>
    StatementClose,

    /// <summary>An identifier (also <c>true</c>, <c>and</c>, <c>in</c>...).</summary>
    Name,

    /// <summary>A string literal, unescaped.</summary>
    String,

    /// <summary>An integer literal.</summary>
    Integer,

    /// <summary>A floating-point literal.</summary>
    Float,

    /// <summary>An operator or punctuation.</summary>
    Operator,

    /// <summary>The end of the template.</summary>
    End,
}

/// <summary>One token with the line it starts on.</summary>
internal sealed record JinjaToken(JinjaTokenKind Kind, string Value, int Line)
{
    /// <summary>True for an operator token spelled <paramref name="op"/>.</summary>
    public bool IsOperator(string op) => Kind == JinjaTokenKind.Operator && Value == op;

    /// <summary>True for a name token spelled <paramref name="name"/>.</summary>
    public bool IsName(string name) => Kind == JinjaTokenKind.Name && Value == name;

    /// <summary>How the token reads in an error message.</summary>
    public string Describe() => Kind switch
    {
        JinjaTokenKind.End => "the end of the template",
        JinjaTokenKind.Text => "text",
        JinjaTokenKind.String => $"the string '{Value}'",
        _ => $"'{Value}'",
    };
}
