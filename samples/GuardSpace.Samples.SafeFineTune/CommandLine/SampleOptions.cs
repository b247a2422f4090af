using GuardSpace.Behaviour;
using GuardSpace.Projection;
using TorchSharp;

namespace GuardSpace.Samples.SafeFineTune;

/// <summary>
/// What the command line asked for (<see cref="SampleCommandLine"/> parses it). With no --model, the sample writes and uses
/// a tiny random checkpoint of its own.
/// </summary>
internal sealed record SampleOptions
{
    public string? Model { get; init; }

    public string? Safety { get; init; }

    public string? Harmful { get; init; }

    public string? Train { get; init; }

    public string Out { get; init; } = Path.Combine("artifacts", "safe-fine-tune");

    public string? BaseModel { get; init; }

    public int Rank { get; init; } = 8;

    public int Steps { get; init; } = 60;

    public double LearningRate { get; init; } = 1e-3;

    public int Batch { get; init; } = 4;

    public int MaxLength { get; init; } = 256;

    public int NewTokens { get; init; } = 24;

    public torch.ScalarType Dtype { get; init; } = torch.ScalarType.Float32;

    public string Device { get; init; } = "cpu";

    public NullSpaceThresholdRule Rule { get; init; } = NullSpaceThresholdRule.Relative;

    public double Energy { get; init; } = 0.99;

    public double RelativeThreshold { get; init; } = 1e-6;

    public int? Threads { get; init; }

    public bool Verify { get; init; }

    /// <summary>Use <c>GuardedLoraOptions.Official()</c> instead of the library's default options.</summary>
    public bool Official { get; init; }

    /// <summary>True when the sample makes its own tiny checkpoint and prompts.</summary>
    public bool Embedded => Model is null;

    /// <summary>Train under the refusal constraint (default true).</summary>
    public bool RefusalConstraint { get; init; } = true;

    /// <summary>Benign prompts that calibrate the poison screen; null: no screen.</summary>
    public string? Benign { get; init; }

    /// <summary>What the screen does with a flagged training example (default drop).</summary>
    public ScreenPolicy Screen { get; init; } = ScreenPolicy.Drop;

    /// <summary>Texts that mark an answer as a refusal; empty keeps every answer.</summary>
    public IReadOnlyList<string> RefusalMarkers { get; init; } = [];

    /// <summary>Run (and succeed) even when every adapter is frozen and nothing can train; without it such a run fails.</summary>
    public bool AllowFrozen { get; init; }

    /// <summary><c>--merge-and-save DIR</c>: the fine-tuned model with its adapters merged, as a Hugging Face checkpoint folder; null: not written.</summary>
    public string? MergeAndSave { get; init; }

    /// <summary><c>--dump-logits FILE</c>: the fine-tuned model's last-position logits on <see cref="LogitsPrompts"/> as JSON; null: not written.</summary>
    public string? DumpLogits { get; init; }

    /// <summary>The prompt file for <see cref="DumpLogits"/>; null: the harmful prompts.</summary>
    public string? LogitsPrompts { get; init; }

    /// <summary><c>--chat</c>: every line of every prompt file goes through the model's chat template (without it, only lines marked <c>[chat]</c>).</summary>
    public bool Chat { get; init; }

    /// <summary><c>--system-prompt TEXT</c>: a system turn before every chat line's user turn; null: none.</summary>
    public string? SystemPrompt { get; init; }
}
