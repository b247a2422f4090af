using System.Text.Json;
using System.Text.Json.Nodes;
using GuardSpace.Models.Internal;

namespace GuardSpace.Models.Templates;

/// <summary>
/// A model's chat template, as Hugging Face's <c>apply_chat_template</c> renders it: the <c>chat_template</c> of
/// <c>tokenizer_config.json</c> (a string, or a list of named templates) or a <c>chat_template.jinja</c> file beside it,
/// with the <c>bos_token</c> and <c>eos_token</c> the template may print. The rendered text already holds the model's
/// special tokens (BOS included where the template writes it): encode it without adding another BOS.
/// </summary>
public sealed class ChatTemplate
{
    /// <summary>The tokenizer settings file that carries the template.</summary>
    public const string TokenizerConfigFile = "tokenizer_config.json";

    /// <summary>The separate template file newer versions of transformers write (preferred when present, as transformers does).</summary>
    public const string JinjaFile = "chat_template.jinja";

    private readonly JinjaTemplate _template;

    private ChatTemplate(JinjaTemplate template, string? bosToken, string? eosToken, string source)
    {
        _template = template;
        BosToken = bosToken;
        EosToken = eosToken;
        Source = source;
    }

    /// <summary>The BOS token's text the template sees as <c>bos_token</c>, or null.</summary>
    public string? BosToken { get; }

    /// <summary>The EOS token's text the template sees as <c>eos_token</c>, or null.</summary>
    public string? EosToken { get; }

    /// <summary>Where the template came from (file and, for a named template, its name).</summary>
    public string Source { get; }

    /// <summary>The template text.</summary>
    public string Text => _template.Source;

    /// <summary>A template from its text (for a model without a tokenizer_config.json, or a custom format).</summary>
    /// <exception cref="TemplateException">The template does not parse or uses a construct outside the subset.</exception>
    public static ChatTemplate FromText(string template, string? bosToken = null, string? eosToken = null) =>
        new(JinjaTemplate.Parse(template), bosToken, eosToken, "template text");

    /// <summary>
    /// The chat template of the model folder <paramref name="directory"/>: <c>chat_template.jinja</c> when present, else
    /// the <c>chat_template</c> of <c>tokenizer_config.json</c>; <paramref name="name"/> picks one of a list of named
    /// templates (default: the one named <c>default</c>).
    /// </summary>
    /// <exception cref="FileNotFoundException">The folder has no tokenizer_config.json.</exception>
    /// <exception cref="InvalidDataException">No chat template (a base model), a malformed field, or an unknown name.</exception>
    /// <exception cref="TemplateException">The template uses a construct outside the subset (the message names it and the line).</exception>
    public static ChatTemplate Load(string directory, string? name = null)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(directory);
        var configPath = Path.Combine(directory, TokenizerConfigFile);
        if (!File.Exists(configPath))
        {
            throw new FileNotFoundException($"'{configPath}' is missing: the chat template and the BOS/EOS tokens are read from it.", configPath);
        }

        var config = JsonFiles.ReadObject(configPath);

        var bos = TokenText(config, "bos_token", configPath);
        var eos = TokenText(config, "eos_token", configPath);
        var jinjaPath = Path.Combine(directory, JinjaFile);
        var (text, source) = name is null && File.Exists(jinjaPath)
            ? (File.ReadAllText(jinjaPath), jinjaPath)
            : TemplateText(config, name, configPath);
        try
        {
            return new ChatTemplate(JinjaTemplate.Parse(text), bos, eos, source);
        }
        catch (TemplateException ex)
        {
            throw new TemplateException($"{source}: {ex.Problem}", ex.Line);
        }
    }

    /// <summary>
    /// Renders <paramref name="messages"/>; <paramref name="addGenerationPrompt"/> appends the header of the assistant's
    /// next turn (what a prompt for generation ends with). <paramref name="variables"/> adds template variables (for
    /// example <c>enable_thinking</c>); <c>messages</c>, <c>add_generation_prompt</c>, <c>bos_token</c> and
    /// <c>eos_token</c> are set here.
    /// </summary>
    /// <exception cref="TemplateException">The template failed, or refused the messages (<see cref="TemplateRaisedException"/>).</exception>
    public string Apply(IReadOnlyList<ChatMessage> messages, bool addGenerationPrompt, IReadOnlyDictionary<string, object?>? variables = null)
    {
        ArgumentNullException.ThrowIfNull(messages);
        var all = variables is null ? [] : variables.ToDictionary(p => p.Key, p => p.Value);
        all["messages"] = messages;
        all["add_generation_prompt"] = addGenerationPrompt;
        all["bos_token"] = BosToken ?? "";
        all["eos_token"] = EosToken ?? "";
        return _template.Render(all);
    }

    /// <summary>
    /// The text a generation starts from: <paramref name="prompt"/> as the user's turn (after an optional system turn)
    /// and the generation prompt.
    /// </summary>
    public string RenderPrompt(string prompt, string? systemPrompt = null)
    {
        ArgumentNullException.ThrowIfNull(prompt);
        return Apply(Conversation(prompt, systemPrompt), addGenerationPrompt: true);
    }

    /// <summary>
    /// A training example split where the answer starts: <c>Prompt</c> is <see cref="RenderPrompt"/>'s text, and
    /// <c>Response</c> the rest of the rendered conversation with <paramref name="response"/> as the assistant's turn
    /// (the template's end-of-turn marker included, so no EOS needs adding).
    /// </summary>
    /// <exception cref="InvalidOperationException">The rendered conversation does not start with the rendered prompt (the template writes the assistant turn differently from its generation prompt).</exception>
    public (string Prompt, string Response) RenderExample(string prompt, string response, string? systemPrompt = null)
    {
        ArgumentNullException.ThrowIfNull(response);
        var promptText = RenderPrompt(prompt, systemPrompt);
        var full = Apply([.. Conversation(prompt, systemPrompt), ChatMessage.Assistant(response)], addGenerationPrompt: false);
        if (!full.StartsWith(promptText, StringComparison.Ordinal))
        {
            throw new InvalidOperationException(
                $"The chat template of {Source} renders the assistant's turn differently from its generation prompt, so the answer cannot be separated " +
                "from the prompt for training. Render the conversation with Apply and choose the labelled span yourself.");
        }

        return (promptText, full[promptText.Length..]);
    }

    private static List<ChatMessage> Conversation(string prompt, string? systemPrompt) =>
        systemPrompt is null ? [ChatMessage.User(prompt)] : [ChatMessage.System(systemPrompt), ChatMessage.User(prompt)];

    private static (string Text, string Source) TemplateText(JsonObject config, string? name, string path)
    {
        switch (config["chat_template"])
        {
            case null:
                throw new InvalidDataException(
                    $"'{path}' has no \"chat_template\" (and there is no {JinjaFile} beside it): the model has no chat format (a base model?). " +
                    "Write its prompts raw, or give a template with ChatTemplate.FromText.");
            case JsonValue value when value.TryGetValue<string>(out var text):
                return name is null || name == "default"
                    ? (text, path)
                    : throw new InvalidDataException($"'{path}' has a single chat template; there is none named '{name}'.");
            case JsonArray list:
                var wanted = name ?? "default";
                var names = new List<string>();
                foreach (var entry in list)
                {
                    var entryName = entry?["name"]?.GetValue<string>();
                    var template = entry?["template"]?.GetValue<string>();
                    if (entryName is null || template is null)
                    {
                        throw new InvalidDataException($"'{path}': each entry of the \"chat_template\" list needs a string \"name\" and a string \"template\".");
                    }

                    if (entryName == wanted)
                    {
                        return (template, $"{path} (template '{entryName}')");
                    }

                    names.Add(entryName);
                }

                throw new InvalidDataException($"'{path}' has no chat template named '{wanted}' (it has: {string.Join(", ", names)}). Pass one of these names.");
            default:
                throw new InvalidDataException($"'{path}': \"chat_template\" must be a string or a list of {{\"name\", \"template\"}} objects.");
        }
    }

    /// <summary>A special token's text: a string, or an added-token object with a string "content"; null when absent.</summary>
    private static string? TokenText(JsonObject config, string field, string path) => config[field] switch
    {
        null => null,
        JsonValue v when v.TryGetValue<string>(out var s) => s,
        JsonObject o when o["content"] is JsonValue c && c.TryGetValue<string>(out var content) => content,
        _ => throw new InvalidDataException($"'{path}': \"{field}\" must be a string or an object with a string \"content\"."),
    };
}
