using System.Globalization;

namespace GuardSpace.Demo;

/// <summary>Command-line options of the demo. <c>--quick</c> shrinks every stage to a smoke run for CI.</summary>
public sealed class DemoOptions
{
    public double Poison { get; set; } = 0.1;

    public int TrainSize { get; set; } = 1000;

    public int Rank { get; set; } = 8;

    public int Seeds { get; set; } = 3;

    public int Steps { get; set; } = 200;

    public int PretrainSteps { get; set; } = 2000;

    public int AlignSteps { get; set; } = 2500;

    public int Batch { get; set; } = 32;

    public double AttackLr { get; set; } = 5e-4;

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

    public const string Usage = """
        GuardSpace demo: pre-train, align, attack a tiny transformer and compare adapter methods.
        options:
          --poison P        fraction of poisoned harmful-compliance items in the attack set (default 0.1)
          --train-size N    attack fine-tuning set size (default 1000)
          --rank R          adapter rank (default 8)
          --seeds S         attack seeds (default 3)
          --steps N         attack steps per method and seed (default 200)
          --pretrain-steps N, --align-steps N (default 2000, 2500)
          --lr X            attack learning rate, Adam (default 5e-4)
          --asft-lambda X   AsFT regulariser weight (default 1)
          --methods a,b     subset of: lora,pissa,milora,corda,nullspace,asft,guardspace
          --device cpu|cuda (default cpu)
          --threads N       TorchSharp intra-op threads, 0 = TorchSharp's choice (default 1: on a shared
                            2-core machine one thread was about 4x faster than two)
          --quick           smoke run (tiny steps, 1 seed) that still writes the table, JSON and charts
          --no-cache        retrain the pre-trained and aligned models
          --out DIR         output folder (default artifacts/demo; artifacts/demo/quick with --quick)
        """;

    public static DemoOptions Parse(string[] args)
    {
        var o = new DemoOptions();
        var seen = new HashSet<string>(StringComparer.Ordinal);
        for (int i = 0; i < args.Length; i++)
        {
            string a = args[i];
            string Next() => i + 1 < args.Length ? args[++i] : throw new ArgumentException($"{a} needs a value");
            int NextInt() => int.Parse(Next(), CultureInfo.InvariantCulture);
            double NextDouble() => double.Parse(Next(), CultureInfo.InvariantCulture);
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
                case "--methods": o.Methods = Next().Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries); break;
                case "--device": o.Device = Next(); break;
                case "--threads": o.Threads = NextInt(); break;
                case "--quick": o.Quick = true; break;
                case "--no-cache": o.NoCache = true; break;
                case "--out": o.Out = Next(); break;
                case "-h":
                case "--help":
                    throw new HelpRequestedException();
                default: throw new ArgumentException($"unknown option {a}");
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

        if (o.Poison is < 0 or > 1 || o.TrainSize < 1 || o.Rank < 1 || o.Seeds < 1 || o.Steps < 1 || o.Device is not ("cpu" or "cuda"))
        {
            throw new ArgumentException("invalid option value (see --help)");
        }

        return o;
    }
}

public sealed class HelpRequestedException : Exception
{
}
