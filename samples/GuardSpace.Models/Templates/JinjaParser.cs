using System.Globalization;

namespace GuardSpace.Models.Templates;

/// <summary>
/// Parses lexer tokens into statements and expressions with Jinja's precedence (lowest first): <c>x if c else y</c>,
/// <c>or</c>, <c>and</c>, <c>not</c>, comparisons and <c>in</c>, <c>+ -</c>, <c>~</c>, <c>* / // %</c>, <c>**</c>, unary
/// <c>- +</c>, then postfix <c>.name</c>, <c>[...]</c>, <c>(...)</c>, <c>| filter</c> and <c>is test</c>.
/// </summary>
internal sealed class JinjaParser
{
    private static readonly HashSet<string> Unsupported = ["include", "extends", "block", "import", "from", "call", "filter", "with", "raw", "autoescape", "do", "trans"];
    private static readonly HashSet<string> Comparisons = ["==", "!=", "<", ">", "<=", ">="];
    private readonly List<JinjaToken> _tokens;
    private int _i;

    private JinjaParser(List<JinjaToken> tokens) => _tokens = tokens;

    private JinjaToken Current => _tokens[_i];

    /// <summary>The statements of <paramref name="source"/>.</summary>
    public static IReadOnlyList<JinjaNode> Parse(string source)
    {
        var parser = new JinjaParser(JinjaLexer.Tokenize(source));
        var body = parser.ParseBody([]);
        if (parser.Current.Kind != JinjaTokenKind.End)
        {
            var tag = parser._tokens[parser._i + 1];
            throw new TemplateException($"'{{% {tag.Value} %}}' has no matching opening statement.", tag.Line);
        }

        return body;
    }

    /// <summary>Statements up to the end of the template or a <c>{% name %}</c> with a name in <paramref name="stops"/> (left unread).</summary>
    private List<JinjaNode> ParseBody(HashSet<string> stops)
    {
        var nodes = new List<JinjaNode>();
        while (true)
        {
            var token = Current;
            switch (token.Kind)
            {
                case JinjaTokenKind.End:
                    return nodes;
                case JinjaTokenKind.Text:
                    nodes.Add(new TextNode(token.Value, token.Line));
                    _i++;
                    break;
                case JinjaTokenKind.OutputOpen:
                    _i++;
                    nodes.Add(new OutputNode(ParseExpression(), token.Line));
                    Expect(JinjaTokenKind.OutputClose, "'}}'");
                    break;
                case JinjaTokenKind.StatementOpen:
                    var name = _tokens[_i + 1];
                    if (name.Kind == JinjaTokenKind.Name && (stops.Contains(name.Value) || name.Value.StartsWith("end", StringComparison.Ordinal) || name.Value is "elif" or "else"))
                    {
                        return nodes;
                    }

                    _i++;
                    nodes.Add(ParseStatement());
                    break;
                default:
                    throw new TemplateException($"unexpected {token.Describe()}.", token.Line);
            }
        }
    }

    private JinjaNode ParseStatement()
    {
        var keyword = Current;
        if (keyword.Kind != JinjaTokenKind.Name)
        {
            throw new TemplateException($"a statement must start with a keyword such as 'if', 'for' or 'set', not {keyword.Describe()}.", keyword.Line);
        }

        _i++;
        switch (keyword.Value)
        {
            case "if":
                return ParseIf(keyword.Line);
            case "for":
                return ParseFor(keyword.Line);
            case "set":
                return ParseSet(keyword.Line);
            case "macro":
                return ParseMacro(keyword.Line);
            case "break" or "continue":
                Expect(JinjaTokenKind.StatementClose, "'%}'");
                return new LoopControlNode(keyword.Value == "break", keyword.Line);
            case "generation":
                Expect(JinjaTokenKind.StatementClose, "'%}'");
                var body = ParseBody(["endgeneration"]);
                End("endgeneration", keyword.Line);
                return new BlockNode(body, keyword.Line);
            default:
                throw Unsupported.Contains(keyword.Value)
                    ? new TemplateException($"the statement '{{% {keyword.Value} %}}' is not supported by this Jinja subset (supported: if/elif/else, for, set, macro, break, continue, generation).", keyword.Line)
                    : new TemplateException($"unknown statement '{{% {keyword.Value} %}}'.", keyword.Line);
        }
    }

    private IfNode ParseIf(int line)
    {
        var branches = new List<(JinjaExpr, IReadOnlyList<JinjaNode>)>();
        var condition = ParseExpression();
        IReadOnlyList<JinjaNode> elseBody = [];
        while (true)
        {
            Expect(JinjaTokenKind.StatementClose, "'%}'");
            branches.Add((condition, ParseBody(["elif", "else", "endif"])));
            var tag = PeekTag("endif", line);
            _i += 2;
            if (tag.Value == "elif")
            {
                condition = ParseExpression();
                continue;
            }

            if (tag.Value == "else")
            {
                Expect(JinjaTokenKind.StatementClose, "'%}'");
                elseBody = ParseBody(["endif"]);
                End("endif", line);
            }
            else if (tag.Value == "endif")
            {
                Expect(JinjaTokenKind.StatementClose, "'%}'");
            }
            else
            {
                throw new TemplateException($"'{{% {tag.Value} %}}' inside an if block that starts on line {line}; expected elif, else or endif.", tag.Line);
            }

            return new IfNode(branches, elseBody, line);
        }
    }

    private ForNode ParseFor(int line)
    {
        var targets = ParseTargets();
        if (!Current.IsName("in"))
        {
            throw new TemplateException($"expected 'in' after the loop variable, found {Current.Describe()}.", Current.Line);
        }

        _i++;
        var items = ParseConditional(allowIf: false);
        JinjaExpr? filter = null;
        if (Current.IsName("if"))
        {
            _i++;
            filter = ParseExpression();
        }

        if (Current.IsName("recursive"))
        {
            throw new TemplateException("recursive loops ('for ... recursive') are not supported by this Jinja subset.", Current.Line);
        }

        Expect(JinjaTokenKind.StatementClose, "'%}'");
        var body = ParseBody(["else", "endfor"]);
        IReadOnlyList<JinjaNode> elseBody = [];
        if (PeekTag("endfor", line).IsName("else"))
        {
            _i += 2;
            Expect(JinjaTokenKind.StatementClose, "'%}'");
            elseBody = ParseBody(["endfor"]);
        }

        End("endfor", line);
        return new ForNode(targets, items, filter, body, elseBody, line);
    }

    private SetNode ParseSet(int line)
    {
        var targets = ParseTargets();
        string? attribute = null;
        if (targets.Count == 1 && Current.IsOperator("."))
        {
            _i++;
            attribute = ExpectName();
        }

        if (Current.Kind == JinjaTokenKind.StatementClose)
        {
            if (attribute is not null || targets.Count != 1)
            {
                throw new TemplateException("a block '{% set %}' takes a single variable name.", line);
            }

            _i++;
            var body = ParseBody(["endset"]);
            End("endset", line);
            return new SetNode(targets, null, null, body, line);
        }

        if (!Current.IsOperator("="))
        {
            throw new TemplateException($"expected '=' in '{{% set %}}', found {Current.Describe()}.", Current.Line);
        }

        _i++;
        var value = ParseTupleOrExpression();
        Expect(JinjaTokenKind.StatementClose, "'%}'");
        return new SetNode(targets, attribute, value, null, line);
    }

    private MacroNode ParseMacro(int line)
    {
        var name = ExpectName();
        ExpectOperator("(");
        var parameters = new List<(string, JinjaExpr?)>();
        while (!Current.IsOperator(")"))
        {
            var parameter = ExpectName();
            JinjaExpr? defaultValue = null;
            if (Current.IsOperator("="))
            {
                _i++;
                defaultValue = ParseExpression();
            }

            parameters.Add((parameter, defaultValue));
            if (!Current.IsOperator(","))
            {
                break;
            }

            _i++;
        }

        ExpectOperator(")");
        Expect(JinjaTokenKind.StatementClose, "'%}'");
        var body = ParseBody(["endmacro"]);
        End("endmacro", line);
        return new MacroNode(name, parameters, body, line);
    }

    private List<string> ParseTargets()
    {
        var targets = new List<string> { ExpectName() };
        while (Current.IsOperator(","))
        {
            _i++;
            targets.Add(ExpectName());
        }

        return targets;
    }

    /// <summary>The name token of the <c>{% ... %}</c> that closed a body (not consumed); an error naming <paramref name="expected"/> at the end of the template.</summary>
    private JinjaToken PeekTag(string expected, int line)
    {
        if (Current.Kind == JinjaTokenKind.End)
        {
            throw new TemplateException($"the block that starts on line {line} is never closed with '{{% {expected} %}}'.", Current.Line);
        }

        return _tokens[_i + 1];
    }

    private void End(string name, int line)
    {
        var tag = PeekTag(name, line);
        if (!tag.IsName(name))
        {
            throw new TemplateException($"expected '{{% {name} %}}' to close the block that starts on line {line}, found '{{% {tag.Value} %}}'.", tag.Line);
        }

        _i += 2;
        Expect(JinjaTokenKind.StatementClose, "'%}'");
    }

    private JinjaExpr ParseTupleOrExpression()
    {
        var first = ParseExpression();
        if (!Current.IsOperator(","))
        {
            return first;
        }

        var items = new List<JinjaExpr> { first };
        while (Current.IsOperator(","))
        {
            _i++;
            items.Add(ParseExpression());
        }

        return new ListExpr(items, first.Line);
    }

    /// <summary>A full expression, including <c>a if c else b</c>.</summary>
    internal JinjaExpr ParseExpression() => ParseConditional(allowIf: true);

    private JinjaExpr ParseConditional(bool allowIf)
    {
        var value = ParseOr();
        while (allowIf && Current.IsName("if"))
        {
            _i++;
            var condition = ParseOr();
            JinjaExpr? otherwise = null;
            if (Current.IsName("else"))
            {
                _i++;
                otherwise = ParseConditional(allowIf: true);
            }

            value = new ConditionalExpr(condition, value, otherwise, value.Line);
        }

        return value;
    }

    private JinjaExpr ParseOr()
    {
        var left = ParseAnd();
        while (Current.IsName("or"))
        {
            _i++;
            left = new BinaryExpr("or", left, ParseAnd(), left.Line);
        }

        return left;
    }

    private JinjaExpr ParseAnd()
    {
        var left = ParseNot();
        while (Current.IsName("and"))
        {
            _i++;
            left = new BinaryExpr("and", left, ParseNot(), left.Line);
        }

        return left;
    }

    private JinjaExpr ParseNot()
    {
        if (Current.IsName("not"))
        {
            var line = Current.Line;
            _i++;
            return new UnaryExpr("not", ParseNot(), line);
        }

        return ParseCompare();
    }

    private JinjaExpr ParseCompare()
    {
        var left = ParseSum();
        while (true)
        {
            if (Current.Kind == JinjaTokenKind.Operator && Comparisons.Contains(Current.Value))
            {
                var op = Current.Value;
                _i++;
                left = new BinaryExpr(op, left, ParseSum(), left.Line);
            }
            else if (Current.IsName("in"))
            {
                _i++;
                left = new BinaryExpr("in", left, ParseSum(), left.Line);
            }
            else if (Current.IsName("not") && _tokens[_i + 1].IsName("in"))
            {
                _i += 2;
                left = new BinaryExpr("not in", left, ParseSum(), left.Line);
            }
            else
            {
                return left;
            }
        }
    }

    private JinjaExpr ParseSum() => ParseBinary(["+", "-"], ParseConcat);

    private JinjaExpr ParseConcat() => ParseBinary(["~"], ParseProduct);

    private JinjaExpr ParseProduct() => ParseBinary(["*", "/", "//", "%"], ParsePower);

    private JinjaExpr ParsePower() => ParseBinary(["**"], () => ParseUnary(withFilters: true));

    private JinjaExpr ParseBinary(string[] operators, Func<JinjaExpr> next)
    {
        var left = next();
        while (Current.Kind == JinjaTokenKind.Operator && operators.Contains(Current.Value))
        {
            var op = Current.Value;
            _i++;
            left = new BinaryExpr(op, left, next(), left.Line);
        }

        return left;
    }

    private JinjaExpr ParseUnary(bool withFilters)
    {
        if (Current.IsOperator("-") || Current.IsOperator("+"))
        {
            var op = Current;
            _i++;
            var operand = ParseUnary(withFilters: false);
            JinjaExpr negated = new UnaryExpr(op.Value, operand, op.Line);
            return withFilters ? ParseFiltersAndTests(negated) : negated;
        }

        var value = ParsePostfix(ParsePrimary());
        return withFilters ? ParseFiltersAndTests(value) : value;
    }

    private JinjaExpr ParsePrimary()
    {
        var token = Current;
        _i++;
        switch (token.Kind)
        {
            case JinjaTokenKind.String:
                var text = token.Value;
                while (Current.Kind == JinjaTokenKind.String)
                {
                    text += Current.Value;   // adjacent literals concatenate, as in Python
                    _i++;
                }

                return new LiteralExpr(text, token.Line);
            case JinjaTokenKind.Integer:
                return new LiteralExpr(long.Parse(token.Value, CultureInfo.InvariantCulture), token.Line);
            case JinjaTokenKind.Float:
                return new LiteralExpr(double.Parse(token.Value, CultureInfo.InvariantCulture), token.Line);
            case JinjaTokenKind.Name:
                return token.Value switch
                {
                    "true" or "True" => new LiteralExpr(true, token.Line),
                    "false" or "False" => new LiteralExpr(false, token.Line),
                    "none" or "None" => new LiteralExpr(null, token.Line),
                    _ => new NameExpr(token.Value, token.Line),
                };
            case JinjaTokenKind.Operator when token.Value == "(":
                if (Current.IsOperator(")"))
                {
                    _i++;
                    return new ListExpr([], token.Line);
                }

                var inner = ParseTupleOrExpression();
                ExpectOperator(")");
                return inner;
            case JinjaTokenKind.Operator when token.Value == "[":
                return new ListExpr(ParseList("]"), token.Line);
            case JinjaTokenKind.Operator when token.Value == "{":
                return ParseDict(token.Line);
            default:
                throw new TemplateException($"expected a value, found {token.Describe()}.", token.Line);
        }
    }

    private List<JinjaExpr> ParseList(string close)
    {
        var items = new List<JinjaExpr>();
        while (!Current.IsOperator(close))
        {
            items.Add(ParseExpression());
            if (!Current.IsOperator(","))
            {
                break;
            }

            _i++;
        }

        ExpectOperator(close);
        return items;
    }

    private DictExpr ParseDict(int line)
    {
        var items = new List<(JinjaExpr, JinjaExpr)>();
        while (!Current.IsOperator("}"))
        {
            var key = ParseExpression();
            ExpectOperator(":");
            items.Add((key, ParseExpression()));
            if (!Current.IsOperator(","))
            {
                break;
            }

            _i++;
        }

        ExpectOperator("}");
        return new DictExpr(items, line);
    }

    private JinjaExpr ParsePostfix(JinjaExpr value)
    {
        while (true)
        {
            var token = Current;
            if (token.IsOperator("."))
            {
                _i++;
                var name = Current.Kind == JinjaTokenKind.Integer ? _tokens[_i++].Value : ExpectName();
                value = new AttributeExpr(value, name, token.Line);
            }
            else if (token.IsOperator("["))
            {
                _i++;
                value = ParseSubscript(value, token.Line);
            }
            else if (token.IsOperator("("))
            {
                _i++;
                value = new CallExpr(value, ParseArguments(), token.Line);
            }
            else
            {
                return value;
            }
        }
    }

    private JinjaExpr ParseSubscript(JinjaExpr target, int line)
    {
        JinjaExpr? start = Current.IsOperator(":") ? null : ParseExpression();
        if (Current.IsOperator("]"))
        {
            _i++;
            return new IndexExpr(target, start!, line);
        }

        ExpectOperator(":");
        JinjaExpr? stop = Current.IsOperator(":") || Current.IsOperator("]") ? null : ParseExpression();
        JinjaExpr? step = null;
        if (Current.IsOperator(":"))
        {
            _i++;
            step = Current.IsOperator("]") ? null : ParseExpression();
        }

        ExpectOperator("]");
        return new SliceExpr(target, start, stop, step, line);
    }

    /// <summary>Arguments after an opening parenthesis, up to and including the closing one.</summary>
    private JinjaArguments ParseArguments()
    {
        var positional = new List<JinjaExpr>();
        var keywords = new List<(string, JinjaExpr)>();
        while (!Current.IsOperator(")"))
        {
            if (Current.Kind == JinjaTokenKind.Name && _tokens[_i + 1].IsOperator("="))
            {
                var name = Current.Value;
                _i += 2;
                keywords.Add((name, ParseExpression()));
            }
            else if (keywords.Count > 0)
            {
                throw new TemplateException("a positional argument follows a keyword argument.", Current.Line);
            }
            else
            {
                positional.Add(ParseExpression());
            }

            if (!Current.IsOperator(","))
            {
                break;
            }

            _i++;
        }

        ExpectOperator(")");
        return new JinjaArguments(positional, keywords);
    }

    private JinjaExpr ParseFiltersAndTests(JinjaExpr value)
    {
        while (true)
        {
            var token = Current;
            if (token.IsOperator("|"))
            {
                _i++;
                var name = ExpectName();
                if (!JinjaFilters.Names.Contains(name))
                {
                    throw new TemplateException($"the filter '{name}' is not supported by this Jinja subset (supported: {string.Join(", ", JinjaFilters.Names.Order(StringComparer.Ordinal))}).", token.Line);
                }

                var arguments = JinjaArguments.None;
                if (Current.IsOperator("("))
                {
                    _i++;
                    arguments = ParseArguments();
                }

                value = new FilterExpr(value, name, arguments, token.Line);
            }
            else if (token.IsName("is"))
            {
                _i++;
                var negated = Current.IsName("not");
                _i += negated ? 1 : 0;
                var name = ExpectName();
                if (!JinjaTests.Names.Contains(name))
                {
                    throw new TemplateException($"the test '{name}' is not supported by this Jinja subset (supported: {string.Join(", ", JinjaTests.Names.Order(StringComparer.Ordinal))}).", token.Line);
                }

                var arguments = JinjaArguments.None;
                if (Current.IsOperator("("))
                {
                    _i++;
                    arguments = ParseArguments();
                }
                else if (Current.Kind is JinjaTokenKind.String or JinjaTokenKind.Integer or JinjaTokenKind.Float)
                {
                    arguments = new JinjaArguments([ParsePrimary()], []);
                }

                value = new TestExpr(value, name, negated, arguments, token.Line);
            }
            else
            {
                return value;
            }
        }
    }

    private string ExpectName()
    {
        if (Current.Kind != JinjaTokenKind.Name)
        {
            throw new TemplateException($"expected a name, found {Current.Describe()}.", Current.Line);
        }

        return _tokens[_i++].Value;
    }

    private void ExpectOperator(string op)
    {
        if (!Current.IsOperator(op))
        {
            throw new TemplateException($"expected '{op}', found {Current.Describe()}.", Current.Line);
        }

        _i++;
    }

    private void Expect(JinjaTokenKind kind, string what)
    {
        if (Current.Kind != kind)
        {
            throw new TemplateException($"expected {what}, found {Current.Describe()}.", Current.Line);
        }

        _i++;
    }
}
