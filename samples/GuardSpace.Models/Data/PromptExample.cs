namespace GuardSpace.Models.Data;

/// <summary>One line of a prompt or training file: a prompt and, for supervised fine-tuning, the response to learn (null when the file gives none).</summary>
/// <param name="Prompt">The prompt text.</param>
/// <param name="Response">The response text, or null.</param>
public sealed record PromptExample(string Prompt, string? Response);
