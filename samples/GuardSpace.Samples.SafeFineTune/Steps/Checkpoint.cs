using GuardSpace.Models.Data;
using GuardSpace.Models.Llama;
using GuardSpace.Models.Tokenization;

namespace GuardSpace.Samples.SafeFineTune;

/// <summary>The model, its tokenizer, how prompts are encoded and the three prompt files, as loaded (the model is the aligned one until attach).</summary>
internal sealed class Checkpoint(string directory, LlamaForCausalLM model, PromptEncoding encoding) : IDisposable
{
    public string Directory { get; } = directory;

    public LlamaForCausalLM Model { get; } = model;

    public HfTokenizer Tokenizer => Encoding.Tokenizer;

    /// <summary>Raw lines as written, chat lines through the model's template.</summary>
    public PromptEncoding Encoding { get; } = encoding;

    public required IReadOnlyList<PromptExample> Safety { get; init; }

    public required IReadOnlyList<PromptExample> Harmful { get; init; }

    public required IReadOnlyList<PromptExample> Train { get; init; }

    /// <summary>The --benign prompts (the poison screen's calibration), or null without --benign.</summary>
    public IReadOnlyList<PromptExample>? Benign { get; init; }

    /// <summary>The --logits-prompts lines, or null (the logits dump then uses the harmful prompts).</summary>
    public IReadOnlyList<PromptExample>? LogitsPrompts { get; init; }

    /// <summary>The padding id: EOS, or 0 for a tokenizer without one.</summary>
    public long Pad => (long)(Tokenizer.EosId ?? 0);

    public void Dispose() => Model.Dispose();
}
