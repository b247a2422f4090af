namespace GuardSpace.Models.Templates;

/// <summary>One turn of a conversation for a chat template.</summary>
/// <param name="Role">Who speaks: <c>system</c>, <c>user</c> or <c>assistant</c> (templates may accept others, such as <c>tool</c>).</param>
/// <param name="Content">What is said.</param>
public sealed record ChatMessage(string Role, string Content)
{
    /// <summary>A system message.</summary>
    public static ChatMessage System(string content) => new("system", content);

    /// <summary>A user message.</summary>
    public static ChatMessage User(string content) => new("user", content);

    /// <summary>An assistant message.</summary>
    public static ChatMessage Assistant(string content) => new("assistant", content);

    /// <summary>The message as a template sees it: a mapping with <c>role</c> and <c>content</c>.</summary>
    internal Dictionary<string, object?> ToDictionary() => new() { ["role"] = Role, ["content"] = Content };
}
