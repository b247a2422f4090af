namespace GuardSpace.Models.Templates;

/// <summary>
/// A chat template that cannot be parsed or rendered: a construct outside the supported Jinja subset, a syntax error, or
/// an error while rendering (an unknown variable called, a wrong type). The message names the construct and the line.
/// </summary>
public class TemplateException : Exception
{
    /// <summary>Creates the exception for <paramref name="line"/> (1-based) of the template.</summary>
    public TemplateException(string message, int line)
        : base($"Chat template line {line}: {message}")
    {
        Line = line;
        Problem = message;
    }

    /// <summary>The problem without the line.</summary>
    public string Problem { get; }

    /// <summary>The 1-based line of the template where the problem is.</summary>
    public int Line { get; }
}

/// <summary>The template itself refused the input through <c>raise_exception(message)</c> (for example, roles that do not alternate).</summary>
public sealed class TemplateRaisedException : TemplateException
{
    /// <summary>Creates the exception with the template's own message.</summary>
    public TemplateRaisedException(string templateMessage, int line)
        : base($"the template raised an exception: {templateMessage}", line)
    {
        TemplateMessage = templateMessage;
    }

    /// <summary>The message the template gave to <c>raise_exception</c>.</summary>
    public string TemplateMessage { get; }
}
