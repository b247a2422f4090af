namespace GuardSpace.Models.Templates;

/// <summary>
/// A parsed template in the Jinja subset that Hugging Face chat templates use (the constructs are listed in
/// docs/getting-started.md, "Chat models: templates"), rendered with Hugging Face's settings: <c>trim_blocks</c> and
/// <c>lstrip_blocks</c> on, no autoescaping, <c>tojson</c> as <c>json.dumps(ensure_ascii=False)</c>,
/// <c>raise_exception</c>. Parsing checks the whole template, so an unsupported construct fails at load time.
/// </summary>
public sealed class JinjaTemplate
{
    private readonly IReadOnlyList<JinjaNode> _nodes;

    private JinjaTemplate(string source, IReadOnlyList<JinjaNode> nodes)
    {
        Source = source;
        _nodes = nodes;
    }

    /// <summary>The template text.</summary>
    public string Source { get; }

    /// <summary>Parses <paramref name="source"/>.</summary>
    /// <exception cref="TemplateException">A syntax error or a construct outside the subset (the message names it and the line).</exception>
    public static JinjaTemplate Parse(string source)
    {
        ArgumentNullException.ThrowIfNull(source);
        return new JinjaTemplate(source, JinjaParser.Parse(source));
    }

    /// <summary>
    /// Renders the template with <paramref name="variables"/>: strings, numbers, booleans, null, lists, dictionaries with
    /// string keys and <see cref="ChatMessage"/>s (seen as mappings with <c>role</c> and <c>content</c>).
    /// </summary>
    /// <exception cref="TemplateException">An error while rendering; <see cref="TemplateRaisedException"/> when the template refused the input.</exception>
    public string Render(IReadOnlyDictionary<string, object?> variables)
    {
        ArgumentNullException.ThrowIfNull(variables);
        return JinjaRenderer.Render(_nodes, variables.ToDictionary(p => p.Key, p => JinjaValues.FromDotNet(p.Value)));
    }
}
