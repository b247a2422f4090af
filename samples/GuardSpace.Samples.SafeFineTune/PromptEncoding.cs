using GuardSpace.Models.Data;
using GuardSpace.Models.Templates;
using GuardSpace.Models.Tokenization;

namespace GuardSpace.Samples.SafeFineTune;

/// <summary>
/// How this run turns a prompt-file line into token ids. A raw line as written (BOS + prompt, and "\n" before an
/// answer); a chat line (marked <c>[chat]</c>, or every line with --chat) through the model's chat template as the
/// user's turn with the generation prompt, so calibration, refusal data, the screen and training all see what the
/// served model sees.
/// </summary>
internal sealed class PromptEncoding(HfTokenizer tokenizer, PromptFormat format)
{
    public HfTokenizer Tokenizer => tokenizer;

    /// <summary>Raw, or chat through the model's template (raw lines still go raw).</summary>
    public PromptFormat Format => format;

    /// <summary>A prompt on its own (calibration, the harmful logits, generation): raw is BOS + prompt.</summary>
    public IReadOnlyList<int> Prompt(PromptExample line) => line.Chat ? format.EncodePrompt(tokenizer, line) : tokenizer.Encode(line.Prompt);

    /// <summary>The prompt an answer follows: raw is BOS + prompt + "\n", as in the training data.</summary>
    public IReadOnlyList<int> BeforeAnswer(PromptExample line) => format.EncodePrompt(tokenizer, line);

    /// <summary>
    /// A training example: its prompt ids and the ids to learn (raw: the response and EOS; chat: the assistant's turn
    /// with its end-of-turn marker). A line without a response is all prompt, learned whole.
    /// </summary>
    public (IReadOnlyList<int> Prompt, IReadOnlyList<int> Response) Example(PromptExample line) =>
        line.Response is null ? (Prompt(line), []) : format.EncodeExample(tokenizer, line);

    /// <summary>
    /// The format for the APIs that take plain prompts (refusal data): the chat format when every line of
    /// <paramref name="file"/> is a chat line, null (raw) when none is; a file that mixes both cannot be one format.
    /// </summary>
    /// <exception cref="SampleFailure">The file mixes chat and raw lines.</exception>
    public PromptFormat? ForAll(IReadOnlyList<PromptExample> lines, string file)
    {
        var chat = lines.Count(l => l.Chat);
        return chat == 0 ? null
            : chat == lines.Count ? format
            : throw new SampleFailure($"'{file}' has {chat} [chat] and {lines.Count - chat} raw lines; the refusal data is built in one format: mark every line, or run with --chat.");
    }
}
