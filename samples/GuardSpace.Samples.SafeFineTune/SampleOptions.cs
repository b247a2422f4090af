using System.Globalization;
using GuardSpace.Projection;
using TorchSharp;

namespace GuardSpace.Samples.SafeFineTune;

/// <summary>The command line of the sample. With no --model, it writes and uses a tiny random checkpoint of its own.</summary>
internal sealed record SampleOptions
{
    public const string Usage = """
        GuardSpace.Samples.SafeFineTune: Hugging Face checkpoint -> GuardSpace fine-tune -> PEFT adapter.

        With no arguments it writes a tiny random Llama checkpoint, a tokenizer and a few prompts to a temporary folder
        and runs the whole path on them (under a minute on a CPU).

          --model DIR        Hugging Face model folder (config.json, *.safetensors, tokenizer.json or tokenizer.model)
          --safety FILE      safety-triggering prompts (orient the subspace)        one per line, or JSON Lines {"prompt": ...}
          --harmful FILE     harmful prompts (their outputs must not change)        same formats
          --train FILE       fine-tuning data: JSON Lines {"prompt": ..., "response": ...} or one text per line
          --out DIR          where the PEFT adapter goes (default artifacts/safe-fine-tune)
          --base-model NAME  base_model_name_or_path written to adapter_config.json (default: the --model folder)
          --rank R           adapter rank (default 8)           --steps N        optimizer steps (default 60)
          --lr X             AdamW learning rate (default 1e-3) --batch B        batch size (default 4)
          --max-length T     tokens per example (default 256)   --new-tokens N   generated tokens (default 24)
          --dtype T          float32 | float64 | bfloat16 | float16 (default float32)   --device D   cpu | cuda (default cpu)
          --null-space RULE  relative (default, the paper's) | energy          --energy F   energy fraction (default 0.99)
          --relative-threshold X   relative rule: eigenvalues <= X * max are null (default 1e-6, the paper's)
          --official         GuardedLoraOptions.Official() (the paper) instead of the library's default mode
          --threads N        torch.set_num_threads(N)           --verify         check the export against a reload
          --no-refusal-constraint  train without the refusal constraint (the aligned model's own answers to the
                             harmful prompts, replayed with an adapted weight; on by default)
          --refusal-marker T an answer containing T counts as a refusal (repeatable, e.g. "I cannot"); without
                             any, every greedy answer of the aligned model to a harmful prompt is kept
          --benign FILE      benign prompts: with them, the training data is screened along the aligned model's
                             refusal direction (harmful = --harmful) before fine-tuning
          --screen POLICY    what the screen does with a flagged example: drop (default) | relabel | keep
        """;

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
    public GuardSpace.Behaviour.ScreenPolicy Screen { get; init; } = GuardSpace.Behaviour.ScreenPolicy.Drop;

    /// <summary>Texts that mark an answer as a refusal; empty keeps every answer.</summary>
    public IReadOnlyList<string> RefusalMarkers { get; init; } = [];

    /// <summary>Parses <paramref name="args"/>; throws <see cref="ArgumentException"/> with the usage on a bad flag.</summary>
    public static SampleOptions Parse(string[] args)
    {
        var o = new SampleOptions();
        for (var i = 0; i < args.Length; i++)
        {
            string Value() => i + 1 < args.Length ? args[++i] : throw new ArgumentException($"{args[i]} needs a value.\n\n{Usage}");
            int Int() => int.Parse(Value(), CultureInfo.InvariantCulture);
            double Real() => double.Parse(Value(), CultureInfo.InvariantCulture);
            o = args[i] switch
            {
                "--model" => o with { Model = Value() },
                "--safety" => o with { Safety = Value() },
                "--harmful" => o with { Harmful = Value() },
                "--train" => o with { Train = Value() },
                "--out" => o with { Out = Value() },
                "--base-model" => o with { BaseModel = Value() },
                "--rank" => o with { Rank = Int() },
                "--steps" => o with { Steps = Int() },
                "--lr" => o with { LearningRate = Real() },
                "--batch" => o with { Batch = Int() },
                "--max-length" => o with { MaxLength = Int() },
                "--new-tokens" => o with { NewTokens = Int() },
                "--dtype" => o with { Dtype = Value() switch
                {
                    "float32" => torch.ScalarType.Float32,
                    "float64" => torch.ScalarType.Float64,
                    "bfloat16" => torch.ScalarType.BFloat16,
                    "float16" => torch.ScalarType.Float16,
                    var d => throw new ArgumentException($"--dtype {d}: use float32, float64, bfloat16 or float16."),
                } },
                "--device" => o with { Device = Value() },
                "--null-space" => o with { Rule = Value() switch
                {
                    "relative" => NullSpaceThresholdRule.Relative,
                    "energy" => NullSpaceThresholdRule.EnergyFraction,
                    var r => throw new ArgumentException($"--null-space {r}: use relative or energy."),
                } },
                "--energy" => o with { Energy = Real() },
                "--relative-threshold" => o with { RelativeThreshold = Real() },
                "--threads" => o with { Threads = Int() },
                "--verify" => o with { Verify = true },
                "--official" => o with { Official = true },
                "--no-refusal-constraint" => o with { RefusalConstraint = false },
                "--refusal-marker" => o with { RefusalMarkers = [.. o.RefusalMarkers, Value()] },
                "--benign" => o with { Benign = Value() },
                "--screen" => o with { Screen = Value() switch
                {
                    "drop" => GuardSpace.Behaviour.ScreenPolicy.Drop,
                    "relabel" => GuardSpace.Behaviour.ScreenPolicy.Relabel,
                    "keep" => GuardSpace.Behaviour.ScreenPolicy.Keep,
                    var p => throw new ArgumentException($"--screen {p}: use drop, relabel or keep."),
                } },
                "--help" or "-h" => throw new ArgumentException(Usage),
                var other => throw new ArgumentException($"Unknown argument '{other}'.\n\n{Usage}"),
            };
        }

        var given = new[] { o.Safety, o.Harmful, o.Train }.Count(f => f is not null);
        if (o.Model is not null && given != 3)
        {
            throw new ArgumentException($"--model needs --safety, --harmful and --train.\n\n{Usage}");
        }

        if (o.Model is null && given > 0)
        {
            throw new ArgumentException($"--safety, --harmful and --train need --model (without it the sample uses its own tiny model and prompts).\n\n{Usage}");
        }

        if (o.Rank < 1 || o.Steps < 0 || o.Batch < 1 || o.MaxLength < 2 || !(o.LearningRate > 0))
        {
            throw new ArgumentException($"--rank, --batch and --max-length must be positive, --steps non-negative, --lr positive.\n\n{Usage}");
        }

        return o;
    }
}
