using GuardSpace.Models.Data;
using GuardSpace.Models.Llama;
using GuardSpace.Models.Tokenization;
using Spectre.Console;

namespace GuardSpace.Samples.SafeFineTune;

/// <summary>Step 1: load the checkpoint folder, its tokenizer and the prompt files, and say what they hold.</summary>
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
            var checkpoint = new Checkpoint(directory, model, tokenizer)
            {
                Safety = PromptFile.ReadPrompts(options.Safety!),
                Harmful = PromptFile.ReadPrompts(options.Harmful!),
                Train = PromptFile.Read(options.Train!),
            };
            AnsiConsole.MarkupLineInterpolated($"prompts: {checkpoint.Safety.Count} safety ({options.Safety}), {checkpoint.Harmful.Count} harmful ({options.Harmful}), {checkpoint.Train.Count} training examples ({options.Train})");
            session.Lap("load the checkpoint, tokenizer and files");
            return checkpoint;
        }
        catch
        {
            model.Dispose();
            throw;
        }
    }
}
