namespace GuardSpace.Models.Data;

/// <summary>
/// One line of a prompt or training file: a prompt and, for supervised fine-tuning, the response to learn (null when the
/// file gives none), and whether the model's chat template applies to it.
/// </summary>
/// <param name="Prompt">The prompt text.</param>
/// <param name="Response">The response text, or null.</param>
/// <param name="Chat">
/// True when the prompt is the user's turn of a conversation to render with the model's chat template
/// (<see cref="Templates.PromptFormat"/>); false (the default) when it is tokenized as written.
/// </param>
public sealed record PromptExample(string Prompt, string? Response, bool Chat = false);
