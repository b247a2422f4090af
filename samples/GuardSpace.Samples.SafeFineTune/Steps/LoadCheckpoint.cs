using GuardSpace.Models.Data;
using GuardSpace.Models.Llama;
using GuardSpace.Models.Templates;
using GuardSpace.Models.Tokenization;
using Spectre.Console;

namespace GuardSpace.Samples.SafeFineTune;

/// <summary>
/// Step 1: load the checkpoint folder, its tokenizer and the prompt files (with --chat every line is a chat line), load
/// the model's chat template when any line needs it, and say what they hold.
/// </summary>
internal static class LoadCheckpoint
{
    public static Checkpoint Run(Session session)
    {
        var options = session.Options;
        var directory = options.Model!;
        var model = LlamaForCausalLM.FromPretrained(directory, options.Dtype, session.Device);
        try
        {
            var tokenizer = HfTokenizer.Load(directory, model.Config);
            var c = model.Config;
            var parameters = model.parameters().Sum(p => p.NumberOfElements);
            AnsiConsole.MarkupLineInterpolated($"[bold]{c.Architecture}[/] from {directory}: {c.NumHiddenLayers} layers, width {c.HiddenSize}, {c.NumAttentionHeads} query / {c.KeyValueHeads} key-value heads, vocab {c.VocabSize}, {parameters:N0} parameters, {options.Dtype} on {session.Device.type}");
            AnsiConsole.MarkupLineInterpolated($"tokenizer: {tokenizer.Source}");
            var (safety, harmful, train) = (Read(options.Safety!, options), Read(options.Harmful!, options), Read(options.Train!, options));
            var (benign, logitsPrompts) = (ReadIfGiven(options.Benign, options), ReadIfGiven(options.LogitsPrompts, options));
            IReadOnlyList<PromptExample> all = [.. safety, .. harmful, .. train, .. benign ?? [], .. logitsPrompts ?? []];
            var checkpoint = new Checkpoint(directory, model, new PromptEncoding(tokenizer, Format(directory, options, all)))
            {
                Safety = safety,
                Harmful = harmful,
                Train = train,
                Benign = benign,
                LogitsPrompts = logitsPrompts,
            };
            AnsiConsole.MarkupLineInterpolated($"prompts: {safety.Count} safety ({options.Safety}), {harmful.Count} harmful ({options.Harmful}), {train.Count} training examples ({options.Train})");
            session.Lap("load the checkpoint, tokenizer and files");
            return checkpoint;
        }
        catch
        {
            model.Dispose();
            throw;
        }
    }

    // A prompt file's lines; with --chat every line goes through the chat template.
    private static IReadOnlyList<PromptExample> Read(string path, SampleOptions options) =>
        [.. PromptFile.Read(path).Select(line => options.Chat ? line with { Chat = true } : line)];

    private static IReadOnlyList<PromptExample>? ReadIfGiven(string? path, SampleOptions options) => path is null ? null : Read(path, options);

    // Raw unless a line of any prompt file asks for the template; then the model folder must have one.
    private static PromptFormat Format(string directory, SampleOptions options, IReadOnlyList<PromptExample> lines)
    {
        var chat = lines.Count(l => l.Chat);
        if (chat == 0)
        {
            return PromptFormat.Raw();
        }

        ChatTemplate template;
        try
        {
            template = ChatTemplate.Load(directory);
        }
        catch (InvalidDataException ex)
        {
            var (why, fix) = options.Chat ? ("--chat was given", "run without --chat") : ($"{chat} line(s) of the prompt files are marked [chat]", "remove the [chat] marks");
            throw new SampleFailure($"{why}, so the model's chat template is needed: {ex.Message} For this sample: give a model folder with a chat template, or {fix}.");
        }

        AnsiConsole.MarkupLineInterpolated($"chat template: {template.Source} ({chat} of {lines.Count} lines rendered with it{(options.SystemPrompt is null ? string.Empty : ", after a system prompt")})");
        return PromptFormat.Chat(template, options.SystemPrompt);
    }
}
