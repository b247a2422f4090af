using System.Text;

namespace GuardSpace.Models.Templates;

/// <summary>
/// Runs parsed statements. Scopes follow Jinja: a <c>for</c> body and a macro call get their own scope (a <c>set</c>
/// inside does not leak out; <c>namespace()</c> is the way out), <c>if</c> does not.
/// </summary>
internal sealed class JinjaRenderer
{
    private enum Flow
    {
        Normal,
        Break,
        Continue,
    }

    private sealed class Scope(Scope? parent)
    {
        public Dictionary<string, object?> Variables { get; } = [];

        public bool TryGet(string name, out object? value)
        {
            for (var scope = this; scope is not null; scope = scope.Parent)
            {
                if (scope.Variables.TryGetValue(name, out value))
                {
                    return true;
                }
            }

            value = null;
            return false;
        }

        private Scope? Parent { get; } = parent;
    }

    /// <summary>Renders <paramref name="nodes"/> with <paramref name="variables"/> (already in the value model) over the globals.</summary>
    public static string Render(IReadOnlyList<JinjaNode> nodes, IReadOnlyDictionary<string, object?> variables)
    {
        var globals = new Scope(null);
        foreach (var (name, function) in JinjaGlobals.Functions)
        {
            globals.Variables[name] = function;
        }

        var scope = new Scope(globals);
        foreach (var (name, value) in variables)
        {
            scope.Variables[name] = value;
        }

        var output = new StringBuilder();
        if (new JinjaRenderer().Execute(nodes, scope, output) != Flow.Normal)
        {
            throw new TemplateException("'{% break %}' or '{% continue %}' outside a loop.", nodes.Count > 0 ? nodes[0].Line : 1);
        }

        return output.ToString();
    }

    private Flow Execute(IReadOnlyList<JinjaNode> nodes, Scope scope, StringBuilder output)
    {
        foreach (var node in nodes)
        {
            var flow = Execute(node, scope, output);
            if (flow != Flow.Normal)
            {
                return flow;
            }
        }

        return Flow.Normal;
    }

    private Flow Execute(JinjaNode node, Scope scope, StringBuilder output)
    {
        switch (node)
        {
            case TextNode text:
                output.Append(text.Text);
                return Flow.Normal;
            case OutputNode o:
                output.Append(JinjaValues.Str(Evaluate(o.Value, scope)));
                return Flow.Normal;
            case IfNode i:
                foreach (var (condition, body) in i.Branches)
                {
                    if (JinjaValues.Truthy(Evaluate(condition, scope)))
                    {
                        return Execute(body, scope, output);
                    }
                }

                return Execute(i.Else, scope, output);
            case ForNode f:
                return ExecuteFor(f, scope, output);
            case SetNode s:
                ExecuteSet(s, scope);
                return Flow.Normal;
            case MacroNode m:
                scope.Variables[m.Name] = Macro(m, scope);
                return Flow.Normal;
            case LoopControlNode c:
                return c.IsBreak ? Flow.Break : Flow.Continue;
            case BlockNode b:
                return Execute(b.Body, scope, output);
            default:
                throw new TemplateException($"cannot run a {node.GetType().Name}.", node.Line);
        }
    }

    private Flow ExecuteFor(ForNode f, Scope scope, StringBuilder output)
    {
        var items = JinjaValues.Iterate(Evaluate(f.Items, scope), f.Line);
        if (f.Filter is not null)
        {
            items = [.. items.Where(item =>
            {
                var probe = new Scope(scope);
                Bind(probe, f.Targets, item, f.Line);
                return JinjaValues.Truthy(Evaluate(f.Filter, probe));
            })];
        }

        if (items.Count == 0)
        {
            return Execute(f.Else, scope, output);
        }

        for (var i = 0; i < items.Count; i++)
        {
            var iteration = new Scope(scope);
            Bind(iteration, f.Targets, items[i], f.Line);
            iteration.Variables["loop"] = new Dictionary<string, object?>
            {
                ["index0"] = (long)i,
                ["index"] = (long)i + 1,
                ["revindex0"] = (long)(items.Count - i - 1),
                ["revindex"] = (long)(items.Count - i),
                ["first"] = i == 0,
                ["last"] = i == items.Count - 1,
                ["length"] = (long)items.Count,
                ["previtem"] = i > 0 ? items[i - 1] : new JinjaUndefined("loop.previtem"),
                ["nextitem"] = i + 1 < items.Count ? items[i + 1] : new JinjaUndefined("loop.nextitem"),
            };
            if (Execute(f.Body, iteration, output) == Flow.Break)
            {
                break;
            }
        }

        return Flow.Normal;
    }

    private void ExecuteSet(SetNode s, Scope scope)
    {
        object? value;
        if (s.Body is not null)
        {
            var text = new StringBuilder();
            Execute(s.Body, scope, text);
            value = text.ToString();
        }
        else
        {
            value = Evaluate(s.Value!, scope);
        }

        if (s.Attribute is null)
        {
            Bind(scope, s.Targets, value, s.Line);
            return;
        }

        if (!scope.TryGet(s.Targets[0], out var target) || target is not JinjaNamespace ns)
        {
            throw new TemplateException($"'{{% set {s.Targets[0]}.{s.Attribute} = ... %}}' needs '{s.Targets[0]}' to be a namespace() (it is a {JinjaValues.TypeName(target)}).", s.Line);
        }

        ns[s.Attribute] = value;
    }

    private static void Bind(Scope scope, IReadOnlyList<string> targets, object? value, int line)
    {
        if (targets.Count == 1)
        {
            scope.Variables[targets[0]] = value;
            return;
        }

        var items = JinjaValues.Iterate(value, line);
        if (items.Count != targets.Count)
        {
            throw new TemplateException($"cannot unpack {items.Count} value(s) into {targets.Count} names ({string.Join(", ", targets)}).", line);
        }

        for (var i = 0; i < targets.Count; i++)
        {
            scope.Variables[targets[i]] = items[i];
        }
    }

    private JinjaCallable Macro(MacroNode m, Scope definedIn) => (args, kwargs) =>
    {
        if (args.Count > m.Parameters.Count)
        {
            throw new TemplateException($"the macro '{m.Name}' takes {m.Parameters.Count} argument(s), {args.Count} were given.", m.Line);
        }

        var call = new Scope(definedIn);
        for (var i = 0; i < m.Parameters.Count; i++)
        {
            var (name, fallback) = m.Parameters[i];
            call.Variables[name] = i < args.Count ? args[i]
                : kwargs.TryGetValue(name, out var v) ? v
                : fallback is null ? new JinjaUndefined(name) : Evaluate(fallback, call);
        }

        var output = new StringBuilder();
        Execute(m.Body, call, output);
        return output.ToString();
    };

    private object? Evaluate(JinjaExpr expression, Scope scope)
    {
        switch (expression)
        {
            case LiteralExpr literal:
                return literal.Value;
            case NameExpr name:
                return scope.TryGet(name.Name, out var value) ? value : new JinjaUndefined(name.Name);
            case ListExpr list:
                return list.Items.Select(i => Evaluate(i, scope)).ToList();
            case DictExpr dict:
                return dict.Items.ToDictionary(
                    p => Evaluate(p.Key, scope) as string ?? throw new TemplateException("mapping keys must be strings in this Jinja subset.", dict.Line),
                    p => Evaluate(p.Value, scope));
            case AttributeExpr a:
                return JinjaOperators.Attribute(Evaluate(a.Target, scope), a.Name, Describe(a.Target), a.Line);
            case IndexExpr i:
                return JinjaOperators.Item(Evaluate(i.Target, scope), Evaluate(i.Key, scope), Describe(i.Target), i.Line);
            case SliceExpr s:
                return JinjaOperators.Slice(Evaluate(s.Target, scope), Index(s.Start, scope, s.Line), Index(s.Stop, scope, s.Line), Index(s.Step, scope, s.Line), s.Line);
            case CallExpr c:
                return Call(c, scope);
            case FilterExpr f:
                return JinjaFilters.Apply(f.Name, Evaluate(f.Value, scope), Arguments($"filter '{f.Name}'", f.Arguments, scope, f.Line), f.Line);
            case TestExpr t:
                return JinjaTests.Apply(t.Name, Evaluate(t.Value, scope), Arguments($"test '{t.Name}'", t.Arguments, scope, t.Line), t.Line) != t.Negated;
            case BinaryExpr { Operator: "and" } and:
                return Evaluate(and.Left, scope) is var l && !JinjaValues.Truthy(l) ? l : Evaluate(and.Right, scope);
            case BinaryExpr { Operator: "or" } or:
                return Evaluate(or.Left, scope) is var left && JinjaValues.Truthy(left) ? left : Evaluate(or.Right, scope);
            case BinaryExpr b:
                return JinjaOperators.Binary(b.Operator, Evaluate(b.Left, scope), Evaluate(b.Right, scope), b.Line);
            case UnaryExpr { Operator: "not" } not:
                return !JinjaValues.Truthy(Evaluate(not.Operand, scope));
            case UnaryExpr u:
                return (u.Operator, Evaluate(u.Operand, scope)) switch
                {
                    ("-", long n) => (object)(-n),
                    ("-", double d) => -d,
                    ("+", long n) => (object)n,
                    ("+", double d) => d,
                    (_, var v) => throw new TemplateException($"unary '{u.Operator}' needs a number, not a {JinjaValues.TypeName(v)}.", u.Line),
                };
            case ConditionalExpr c:
                return JinjaValues.Truthy(Evaluate(c.Condition, scope)) ? Evaluate(c.Then, scope)
                    : c.Else is null ? new JinjaUndefined("the missing else of an inline if") : Evaluate(c.Else, scope);
            default:
                throw new TemplateException($"cannot evaluate a {expression.GetType().Name}.", expression.Line);
        }
    }

    private object? Call(CallExpr c, Scope scope)
    {
        var target = Evaluate(c.Target, scope);
        var args = Arguments(Describe(c.Target), c.Arguments, scope, c.Line);
        return target switch
        {
            JinjaCallable function => Invoke(function, args, c.Line),
            JinjaUndefined u => throw new TemplateException($"'{u.Name}' is undefined, so it cannot be called (supported functions: {string.Join(", ", JinjaGlobals.Functions.Keys)}, macros, and methods of strings and mappings).", c.Line),
            _ => throw new TemplateException($"'{Describe(c.Target)}' is a {JinjaValues.TypeName(target)}, not a function.", c.Line),
        };
    }

    private static object? Invoke(JinjaCallable function, JinjaArgs args, int line)
    {
        try
        {
            return function(args.Positional, args.Keywords);
        }
        catch (TemplateException e) when (e.Line == 0)
        {
            // Globals do not know the line they are called from: give it here.
            throw e is TemplateRaisedException raised ? new TemplateRaisedException(raised.TemplateMessage, line) : new TemplateException(e.Problem, line);
        }
    }

    private JinjaArgs Arguments(string callee, JinjaArguments arguments, Scope scope, int line) => new(
        callee,
        [.. arguments.Positional.Select(a => Evaluate(a, scope))],
        arguments.Keywords.ToDictionary(k => k.Name, k => Evaluate(k.Value, scope)),
        line);

    private long? Index(JinjaExpr? expression, Scope scope, int line) => expression is null ? null : Evaluate(expression, scope) switch
    {
        null => null,
        long l => l,
        var other => throw new TemplateException($"slice bounds must be integers, not a {JinjaValues.TypeName(other)}.", line),
    };

    private static string Describe(JinjaExpr expression) => expression switch
    {
        NameExpr n => n.Name,
        AttributeExpr a => $"{Describe(a.Target)}.{a.Name}",
        IndexExpr { Key: LiteralExpr k } i => $"{Describe(i.Target)}[{JinjaValues.Repr(k.Value)}]",
        IndexExpr i => $"{Describe(i.Target)}[...]",
        CallExpr c => $"{Describe(c.Target)}(...)",
        _ => "value",
    };
}
