using GuardSpace.Models.Data;
using GuardSpace.Models.Tokenization;

namespace GuardSpace.Models.Templates;

/// <summary>
/// How prompts become token ids for a model. Raw: BOS, the prompt as written, then a separator (the answer follows).
/// Chat: the prompt as the user's turn (after an optional system prompt) rendered by the model's
/// <see cref="ChatTemplate"/> with the generation prompt, encoded without adding BOS, since the template writes the
/// model's special tokens itself (as <c>apply_chat_template(tokenize=True)</c> does).
/// </summary>
public sealed class PromptFormat
{
    private PromptFormat(ChatTemplate? template, string? systemPrompt, string separator)
    {
        Template = template;
        SystemPrompt = systemPrompt;
        Separator = separator;
    }

    /// <summary>The chat template, or null for a raw format.</summary>
    public ChatTemplate? Template { get; }

    /// <summary>The system turn put before every chat prompt, or null for none.</summary>
    public string? SystemPrompt { get; }

    /// <summary>The text between a raw prompt and its answer.</summary>
    public string Separator { get; }

    /// <summary>Prompts tokenized as written: BOS, prompt, <paramref name="separator"/>.</summary>
    public static PromptFormat Raw(string separator = "\n")
    {
        ArgumentNullException.ThrowIfNull(separator);
        return new PromptFormat(null, null, separator);
    }

    /// <summary>
    /// Prompts rendered with <paramref name="template"/> (see <see cref="ChatTemplate.Load"/>); an example whose
    /// <see cref="PromptExample.Chat"/> is false still goes raw, with <paramref name="separator"/>.
    /// </summary>
    public static PromptFormat Chat(ChatTemplate template, string? systemPrompt = null, string separator = "\n")
    {
        ArgumentNullException.ThrowIfNull(template);
        ArgumentNullException.ThrowIfNull(separator);
        return new PromptFormat(template, systemPrompt, separator);
    }

    /// <summary>The text a generation for <paramref name="prompt"/> starts from (through the template when this format has one).</summary>
    public string PromptText(string prompt) => PromptText(prompt, chat: Template is not null);

    /// <summary>Token ids of <see cref="PromptText(string)"/>: BOS added for a raw prompt only.</summary>
    public IReadOnlyList<int> EncodePrompt(HfTokenizer tokenizer, string prompt) => EncodePrompt(tokenizer, prompt, chat: Template is not null);

    /// <summary>Token ids of <paramref name="example"/>'s prompt, through the template when its <see cref="PromptExample.Chat"/> is set.</summary>
    /// <exception cref="InvalidOperationException">The example asks for the chat template and this format has none.</exception>
    public IReadOnlyList<int> EncodePrompt(HfTokenizer tokenizer, PromptExample example)
    {
        ArgumentNullException.ThrowIfNull(example);
        return EncodePrompt(tokenizer, example.Prompt, example.Chat);
    }

    /// <summary>
    /// A training example's prompt and response ids: the response follows the prompt exactly. Raw: BOS + prompt +
    /// separator, then the response and EOS. Chat: the rendered prompt, then the rest of the rendered conversation with the
    /// response as the assistant's turn (its end-of-turn marker included; no EOS added). Response null: empty.
    /// </summary>
    public (IReadOnlyList<int> Prompt, IReadOnlyList<int> Response) EncodeExample(HfTokenizer tokenizer, PromptExample example)
    {
        ArgumentNullException.ThrowIfNull(tokenizer);
        ArgumentNullException.ThrowIfNull(example);
        if (example.Response is null)
        {
            return (EncodePrompt(tokenizer, example), []);
        }

        if (!example.Chat)
        {
            var response = tokenizer.Encode(example.Response, withBos: false);
            return (EncodePrompt(tokenizer, example), tokenizer.EosId is { } eos ? [.. response, eos] : response);
        }

        var (prompt, rest) = RequireTemplate().RenderExample(example.Prompt, example.Response, SystemPrompt);
        return (tokenizer.Encode(prompt, withBos: false), tokenizer.Encode(rest, withBos: false));
    }

    private IReadOnlyList<int> EncodePrompt(HfTokenizer tokenizer, string prompt, bool chat)
    {
        ArgumentNullException.ThrowIfNull(tokenizer);
        return tokenizer.Encode(PromptText(prompt, chat), withBos: !chat);
    }

    private string PromptText(string prompt, bool chat)
    {
        ArgumentNullException.ThrowIfNull(prompt);
        return chat ? RequireTemplate().RenderPrompt(prompt, SystemPrompt) : prompt + Separator;
    }

    private ChatTemplate RequireTemplate() => Template ?? throw new InvalidOperationException(
        "A prompt is marked for the chat template ('[chat]' or \"chat\": true) but no template was given: use PromptFormat.Chat(ChatTemplate.Load(modelDirectory)).");
}
