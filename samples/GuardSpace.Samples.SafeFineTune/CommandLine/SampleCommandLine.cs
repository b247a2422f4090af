using System.Globalization;
using System.Text;
using GuardSpace.Behaviour;
using GuardSpace.Projection;
using TorchSharp;

namespace GuardSpace.Samples.SafeFineTune;

/// <summary>
/// The sample's command line: one table row per option (name, value placeholder, help, how it sets
/// <see cref="SampleOptions"/>), from which both the parser and the usage text are made, so a new option is one row.
/// </summary>
internal static class SampleCommandLine
{
    /// <summary>The hint printed under a usage error.</summary>
    public const string Hint = "Run with --help for the options.";

    private const string Header = """
        GuardSpace.Samples.SafeFineTune: Hugging Face checkpoint -> GuardSpace fine-tune -> PEFT adapter.

        With no arguments it writes a tiny random Llama checkpoint, a tokenizer and a few prompts to a temporary folder
        and runs the whole path on them (under a minute on a CPU).
        Exit codes: 0 success, 1 runtime failure or failed check (message on stderr), 2 usage error.

        """;

    private static readonly Dictionary<string, torch.ScalarType> DataTypes = new(StringComparer.Ordinal)
    {
        ["float32"] = torch.ScalarType.Float32,
        ["float64"] = torch.ScalarType.Float64,
        ["bfloat16"] = torch.ScalarType.BFloat16,
        ["float16"] = torch.ScalarType.Float16,
    };

    private static readonly Dictionary<string, string> Devices = new(StringComparer.Ordinal) { ["cpu"] = "cpu", ["cuda"] = "cuda" };

    private static readonly Dictionary<string, NullSpaceThresholdRule> Rules = new(StringComparer.Ordinal)
    {
        ["relative"] = NullSpaceThresholdRule.Relative,
        ["energy"] = NullSpaceThresholdRule.EnergyFraction,
    };

    private static readonly Dictionary<string, ScreenPolicy> Policies = new(StringComparer.Ordinal)
    {
        ["drop"] = ScreenPolicy.Drop,
        ["relabel"] = ScreenPolicy.Relabel,
        ["keep"] = ScreenPolicy.Keep,
    };

    private static readonly Option[] Options =
    [
        new("--model", "DIR", "Hugging Face model folder (config.json, *.safetensors, tokenizer.json or tokenizer.model)", (o, v) => o with { Model = v }),
        new("--safety", "FILE", "safety-triggering prompts (orient the subspace): one per line, or JSON Lines {\"prompt\": ...}", (o, v) => o with { Safety = v }),
        new("--harmful", "FILE", "harmful prompts (their outputs must not change): same formats", (o, v) => o with { Harmful = v }),
        new("--train", "FILE", "fine-tuning data: JSON Lines {\"prompt\": ..., \"response\": ...} or one text per line", (o, v) => o with { Train = v }),
        new("--out", "DIR", "where the PEFT adapter goes (default artifacts/safe-fine-tune)", (o, v) => o with { Out = v }),
        new("--base-model", "NAME", "base_model_name_or_path written to adapter_config.json (default: the --model folder)", (o, v) => o with { BaseModel = v }),
        new("--rank", "R", "adapter rank (default 8)", (o, v) => o with { Rank = Int("--rank", v) }),
        new("--steps", "N", "optimizer steps (default 60)", (o, v) => o with { Steps = Int("--steps", v) }),
        new("--lr", "X", "AdamW learning rate (default 1e-3)", (o, v) => o with { LearningRate = Real("--lr", v) }),
        new("--batch", "B", "batch size (default 4)", (o, v) => o with { Batch = Int("--batch", v) }),
        new("--max-length", "T", "tokens per example (default 256)", (o, v) => o with { MaxLength = Int("--max-length", v) }),
        new("--new-tokens", "N", "generated tokens (default 24)", (o, v) => o with { NewTokens = Int("--new-tokens", v) }),
        new("--dtype", "T", "float32 | float64 | bfloat16 | float16 (default float32)", (o, v) => o with { Dtype = OneOf("--dtype", v, DataTypes) }),
        new("--device", "D", "cpu | cuda (default cpu)", (o, v) => o with { Device = OneOf("--device", v, Devices) }),
        new("--null-space", "RULE", "relative (default, the paper's) | energy", (o, v) => o with { Rule = OneOf("--null-space", v, Rules) }),
        new("--energy", "F", "energy fraction, in (0, 1] (default 0.99)", (o, v) => o with { Energy = Real("--energy", v) }),
        new("--relative-threshold", "X", "relative rule: eigenvalues <= X * max are null, in (0, 1) (default 1e-6, the paper's)", (o, v) => o with { RelativeThreshold = Real("--relative-threshold", v) }),
        new("--official", null, "GuardedLoraOptions.Official() (the paper) instead of the library's default mode", (o, _) => o with { Official = true }),
        new("--threads", "N", "torch.set_num_threads(N)", (o, v) => o with { Threads = Int("--threads", v) }),
        new("--verify", null, "check the export against a reload of the original checkpoint", (o, _) => o with { Verify = true }),
        new("--no-refusal-constraint", null, "train without the refusal constraint (the aligned model's own answers to the harmful prompts, replayed with an adapted weight; on by default)", (o, _) => o with { RefusalConstraint = false }),
        new("--refusal-marker", "T", "an answer containing T counts as a refusal (repeatable, e.g. \"I cannot\"); without any, every greedy answer of the aligned model to a harmful prompt is kept", (o, v) => o with { RefusalMarkers = [.. o.RefusalMarkers, v] }),
        new("--benign", "FILE", "benign prompts: with them, the training data is screened along the aligned model's refusal direction (harmful = --harmful) before fine-tuning", (o, v) => o with { Benign = v }),
        new("--screen", "POLICY", "what the screen does with a flagged example: drop (default) | relabel | keep", (o, v) => o with { Screen = OneOf("--screen", v, Policies) }),
        new("--allow-frozen", null, "run even when every adapter is frozen (no layer has a null space, nothing trains); without it such a run fails", (o, _) => o with { AllowFrozen = true }),
        new("--merge-and-save", "DIR", "write the fine-tuned model with its adapters merged as a Hugging Face checkpoint (config, safetensors shards and index, tokenizer files) to DIR, reload it and compare its logits", (o, v) => o with { MergeAndSave = v }),
        new("--dump-logits", "FILE", "write the fine-tuned model's last-position logits on a prompt file (--logits-prompts, default the --harmful prompts) to FILE as JSON", (o, v) => o with { DumpLogits = v }),
        new("--logits-prompts", "FILE", "the prompt file for --dump-logits (default: the --harmful prompts)", (o, v) => o with { LogitsPrompts = v }),
        new("--chat", null, "render every prompt of every file through the model's chat template (tokenizer_config.json's chat_template or chat_template.jinja) as a user turn with the generation prompt; without it only lines marked [chat] (\"chat\": true in JSON Lines) are", (o, _) => o with { Chat = true }),
        new("--system-prompt", "TEXT", "a system turn before every chat line (needs --chat or [chat] lines)", (o, v) => o with { SystemPrompt = v }),
    ];

    /// <summary>The text --help prints: the header and one line (or more, wrapped) per option.</summary>
    public static string Usage
    {
        get
        {
            var text = new StringBuilder(Header).AppendLine("options:");
            foreach (var option in Options)
            {
                var name = option.Value is null ? option.Name : $"{option.Name} {option.Value}";
                text.AppendLine(CultureInfo.InvariantCulture, $"  {name,-24} {option.Help}");
            }

            return text.ToString();
        }
    }

    /// <summary>True when <paramref name="args"/> asks for the usage (--help or -h anywhere).</summary>
    public static bool WantsHelp(IEnumerable<string> args) => args.Any(a => a is "--help" or "-h");

    /// <summary>Parses <paramref name="args"/>; throws <see cref="UsageException"/> with a one-line message on a bad command line.</summary>
    public static SampleOptions Parse(IReadOnlyList<string> args)
    {
        var byName = Options.ToDictionary(o => o.Name, StringComparer.Ordinal);
        var o = new SampleOptions();
        for (var i = 0; i < args.Count; i++)
        {
            if (!byName.TryGetValue(args[i], out var option))
            {
                throw new UsageException($"unknown option '{args[i]}'.");
            }

            if (option.Value is not null && i + 1 >= args.Count)
            {
                throw new UsageException($"{option.Name} needs a value ({option.Value}).");
            }

            o = option.Apply(o, option.Value is null ? string.Empty : args[++i]);
        }

        Validate(o);
        return o;
    }

    private static void Validate(SampleOptions o)
    {
        var given = new[] { o.Safety, o.Harmful, o.Train }.Count(f => f is not null);
        if (o.Model is not null && given != 3)
        {
            throw new UsageException("--model needs --safety, --harmful and --train.");
        }

        if (o.Model is null && given > 0)
        {
            throw new UsageException("--safety, --harmful and --train need --model (without it the sample uses its own tiny model and prompts).");
        }

        if (o.Rank < 1 || o.Steps < 0 || o.Batch < 1 || o.MaxLength < 2 || o.NewTokens < 0 || o.Threads < 1 || !(o.LearningRate > 0))
        {
            throw new UsageException("--rank, --batch, --max-length (2 or more) and --threads must be positive, --steps and --new-tokens non-negative, --lr positive.");
        }

        if (!(o.RelativeThreshold is > 0 and < 1) || !(o.Energy is > 0 and <= 1))
        {
            throw new UsageException($"--relative-threshold must be in (0, 1) and --energy in (0, 1]; got {o.RelativeThreshold.ToString(CultureInfo.InvariantCulture)} and {o.Energy.ToString(CultureInfo.InvariantCulture)}.");
        }

        if (o.LogitsPrompts is not null && o.DumpLogits is null)
        {
            throw new UsageException("--logits-prompts needs --dump-logits FILE (where the logits go).");
        }
    }

    private static int Int(string name, string text) =>
        int.TryParse(text, NumberStyles.Integer, CultureInfo.InvariantCulture, out var value) ? value : throw new UsageException($"{name} takes an integer; got '{text}'.");

    private static double Real(string name, string text) =>
        double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out var value) && double.IsFinite(value) ? value : throw new UsageException($"{name} takes a number; got '{text}'.");

    private static T OneOf<T>(string name, string text, Dictionary<string, T> choices) =>
        choices.TryGetValue(text, out var value) ? value : throw new UsageException($"{name} {text}: use {string.Join(", ", choices.Keys)}.");

    /// <summary>One option: its name, its value placeholder (null for a flag), its help and how it sets the options.</summary>
    private sealed record Option(string Name, string? Value, string Help, Func<SampleOptions, string, SampleOptions> Apply);
}
