using System.Globalization;

namespace GuardSpace.Demo;

/// <summary>Command-line options of the demo. <c>--quick</c> shrinks every stage to a smoke run for CI.</summary>
public sealed class DemoOptions
{
    public double Poison { get; set; } = 0.1;

    public int TrainSize { get; set; } = 1000;

    public int Rank { get; set; } = 8;

    public int Seeds { get; set; } = 3;

    public int Steps { get; set; } = 600;

    public int PretrainSteps { get; set; } = 2000;

    public int AlignSteps { get; set; } = 2500;

    public int Batch { get; set; } = 32;

    public double AttackLr { get; set; } = 1.5e-3;

    public double AsftLambda { get; set; } = 1.0;

    public string Device { get; set; } = "cpu";

    /// <summary>Intra-op threads for TorchSharp (0 = TorchSharp's default).</summary>
    public int Threads { get; set; } = 1;

    public bool Quick { get; set; }

    public bool NoCache { get; set; }

    public string Out { get; set; } = Path.Combine("artifacts", "demo");

    public int Width { get; set; } = 128;

    public int Layers { get; set; } = 2;

    public int Heads { get; set; } = 4;

    public int Mlp { get; set; } = 512;

    public int TaskEvalCount { get; set; } = 300;

    public int HarmfulEvalCount { get; set; } = 256;

    public int CalibrationCount { get; set; } = 256;

    public int NullSpaceCount { get; set; } = 640;

    public string[]? Methods { get; set; }

    /// <summary>Which harmful prompts define the null space: broad (shares phrasing with the poison) or strict.</summary>
    public NullSetCondition NullSet { get; set; } = NullSetCondition.Broad;

    /// <summary>The attack scenarios to run, in order (<c>--attack</c>); the report's top-level fields describe the first.</summary>
    public AttackScenario[] Attacks { get; set; } = [AttackScenario.Explicit, AttackScenario.Benign];

    /// <summary>Multiplies the attack steps (an erosion check: does the protection hold under a longer attack?).</summary>
    public int AttackMultiplier { get; set; } = 1;

    /// <summary>
    /// True (<c>--null-set-answers refusal</c>, the default): the harmful covariance covers each null-set prompt followed by
    /// the aligned model's refusal, so the positions that generate the refusal are protected too; false: prompts only.
    /// </summary>
    public bool NullSetAnswers { get; set; } = true;

    /// <summary>The model family: gpt (LayerNorm, GELU) or llama (RMSNorm, rotary, GQA, SwiGLU).</summary>
    public ModelFamily Family { get; set; } = ModelFamily.Gpt;

    /// <summary>Evaluate every N attack steps and print the learning curve (0 = only at the end).</summary>
    public int EvalEvery { get; set; }

    /// <summary>Print each method's per-layer output change on the null-set, held-out harmful and task prompts.</summary>
    public bool Diagnose { get; set; }

    /// <summary>Accept methods whose adapters were all frozen (nothing trained); without it such a run exits with 1.</summary>
    public bool AllowFrozen { get; set; }

    /// <summary>The attack steps actually run: <see cref="Steps"/> x <see cref="AttackMultiplier"/>.</summary>
    public int AttackSteps => Steps * AttackMultiplier;

    public const string Usage = """
        GuardSpace demo: pre-train, align, attack a tiny transformer and compare adapter methods.
        (pareto --out FILE.png [--title T] report.json[=tag] ...: one chart and table over several runs)
        options:
          --poison P        fraction of poisoned harmful-compliance items in the attack set (default 0.1)
          --train-size N    attack fine-tuning set size (default 1000)
          --rank R          adapter rank (default 8)
          --seeds S         attack seeds (default 3)
          --steps N         attack steps per method and seed (default 600)
          --pretrain-steps N, --align-steps N (default 2000, 2500)
          --lr X            attack learning rate, Adam (default 1.5e-3)
          --asft-lambda X   AsFT regulariser weight (default 1)
          --methods a,b     presets lora,pissa,milora,corda,nullspace,asft,guardspace-official,guardspace
                            (default lora,asft,guardspace-official,guardspace); a preset may carry
                            settings: key@setting=value;... e.g. asft@lambda=10, guardspace@drift=30
                            (settings: rule, energy, relative, absolute, fallback, drift, minnull,
                            floor, refusal, anchor, constraint=0|1, tolerance, screen=off|keep|drop|
                            relabel, targets, attnofficial, lambda, name; see docs/demo.md)
          --null-set broad|strict  null-space prompts share the poison's templates (broad, default) or
                            use templates disjoint from the poison and the evaluation (strict)
          --null-set-answers refusal|none  C_h covers prompt + aligned refusal (default) or prompts only
          --attack a,b      attack scenarios, run in order (default explicit,benign): explicit = a
                            fraction p of harmful requests answered compliantly; benign = the task
                            alone; evading = a fraction p of benign requests in the harmful phrasing
                            answered "sure . first ..." (the screen cannot see them)
          --attack-multiplier N  run N x the attack steps (erosion check; default 1)
          --family gpt|llama  LayerNorm/GELU decoder (default) or RMSNorm/rotary/GQA/SwiGLU
          --eval-every N    print harmful score and accuracy every N attack steps
          --diagnose        print every layer's output change on null-set, held-out harmful, task prompts
          --device cpu|cuda (default cpu)
          --threads N       TorchSharp intra-op threads, 0 = TorchSharp's choice (default 1: on a shared
                            2-core machine one thread was about 4x faster than two)
          --quick           smoke run (tiny steps, 1 seed) that still writes the table, JSON and charts
          --no-cache        retrain the pre-trained and aligned models
          --out DIR         output folder (default artifacts/demo; artifacts/demo/quick with --quick)
          --allow-frozen    accept a method whose adapters were all frozen (nothing trained); without it
                            the run writes its outputs and exits with 1
        exit codes: 0 success, 1 runtime failure or a frozen method (message on stderr), 2 usage error
        """;

    public static DemoOptions Parse(string[] args)
    {
        var o = new DemoOptions();
        var seen = new HashSet<string>(StringComparer.Ordinal);
        for (int i = 0; i < args.Length; i++)
        {
            string a = args[i];
            string Next() => i + 1 < args.Length ? args[++i] : throw new ArgumentException($"{a} needs a value");
            int NextInt() => int.TryParse(Next(), NumberStyles.Integer, CultureInfo.InvariantCulture, out var v) ? v : throw new ArgumentException($"{a} takes an integer; got '{args[i]}'");
            double NextDouble() => double.TryParse(Next(), NumberStyles.Float, CultureInfo.InvariantCulture, out var v) && double.IsFinite(v) ? v : throw new ArgumentException($"{a} takes a number; got '{args[i]}'");
            seen.Add(a);
            switch (a)
            {
                case "--poison": o.Poison = NextDouble(); break;
                case "--train-size": o.TrainSize = NextInt(); break;
                case "--rank": o.Rank = NextInt(); break;
                case "--seeds": o.Seeds = NextInt(); break;
                case "--steps": o.Steps = NextInt(); break;
                case "--pretrain-steps": o.PretrainSteps = NextInt(); break;
                case "--align-steps": o.AlignSteps = NextInt(); break;
                case "--lr": o.AttackLr = NextDouble(); break;
                case "--asft-lambda": o.AsftLambda = NextDouble(); break;
                case "--null-set": o.NullSet = Next() switch { "broad" => NullSetCondition.Broad, "strict" => NullSetCondition.Strict, var v => throw new ArgumentException($"--null-set must be broad or strict; got {v}") }; break;
                case "--attack-multiplier": o.AttackMultiplier = NextInt(); break;
                case "--attack":
                    o.Attacks = [.. Next().Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Select(v => v switch
                    {
                        "explicit" => AttackScenario.Explicit,
                        "benign" => AttackScenario.Benign,
                        "evading" => AttackScenario.Evading,
                        _ => throw new ArgumentException($"--attack takes explicit, benign or evading (comma-separated); got {v}"),
                    })];
                    break;
                case "--eval-every": o.EvalEvery = NextInt(); break;
                case "--null-set-answers": o.NullSetAnswers = Next() switch { "refusal" => true, "none" => false, var v => throw new ArgumentException($"--null-set-answers must be refusal or none; got {v}") }; break;
                case "--family": o.Family = Next() switch { "gpt" => ModelFamily.Gpt, "llama" => ModelFamily.Llama, var v => throw new ArgumentException($"--family must be gpt or llama; got {v}") }; break;
                case "--diagnose": o.Diagnose = true; break;
                case "--allow-frozen": o.AllowFrozen = true; break;
                case "--methods": o.Methods = Next().Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries); break;
                case "--device": o.Device = Next(); break;
                case "--threads": o.Threads = NextInt(); break;
                case "--quick": o.Quick = true; break;
                case "--no-cache": o.NoCache = true; break;
                case "--out": o.Out = Next(); break;
                case "-h":
                case "--help":
                    throw new HelpRequestedException();
                default: throw new ArgumentException($"unknown option '{a}'");
            }
        }

        if (o.Quick)
        {
            // Smoke run: every stage, every method, every output, in well under two minutes.
            if (!seen.Contains("--pretrain-steps")) o.PretrainSteps = 80;
            if (!seen.Contains("--align-steps")) o.AlignSteps = 80;
            if (!seen.Contains("--steps")) o.Steps = 10;
            if (!seen.Contains("--seeds")) o.Seeds = 1;
            if (!seen.Contains("--train-size")) o.TrainSize = 200;
            if (!seen.Contains("--out")) o.Out = Path.Combine("artifacts", "demo", "quick");
            o.TaskEvalCount = 64;
            o.HarmfulEvalCount = 64;
            o.CalibrationCount = 64;
            o.NullSpaceCount = 128;
        }

        if (o.Attacks.Length == 0 || o.Poison is < 0 or > 1 || o.TrainSize < 1 || o.Rank < 1 || o.Seeds < 1 || o.Steps < 1 || o.AttackMultiplier < 1 || o.Device is not ("cpu" or "cuda"))
        {
            throw new ArgumentException("invalid option value: --attack must name a scenario, --poison be in [0, 1], --train-size, --rank, --seeds, --steps and --attack-multiplier positive, --device cpu or cuda");
        }

        return o;
    }
}

public sealed class HelpRequestedException : Exception
{
}
