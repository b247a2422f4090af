using System.Diagnostics;
using System.Globalization;
using GuardSpace.Decomposition;
using GuardSpace.Projection;
using static TorchSharp.torch;

namespace GuardSpace.Benchmarks;

/// <summary>
/// <c>--llama-block</c>: decomposes one whole Llama-2-7B-shaped block with the library (float32, r = 16, Solver = Auto):
/// q/k/v/o 4096 x 4096, gate/up 11008 x 4096, down 4096 x 11008; one projector per distinct input (q/k/v share the
/// attention input, gate/up the MLP input), as GuardedModel fits them. Synthetic inputs (<see cref="Inputs"/>), built
/// before the clock starts. One cold pass, wall-clock per layer and in total: a figure for scale, not a BenchmarkDotNet
/// measurement (one pass of the block takes minutes on 2 cores).
/// </summary>
public static class LlamaBlockDecomposition
{
    private const int Rank = 16;
    private static readonly (string Layer, long Out, long In, string Input)[] Layers =
    [
        ("q_proj", 4096, 4096, "attention input"), ("k_proj", 4096, 4096, "attention input"), ("v_proj", 4096, 4096, "attention input"),
        ("o_proj", 4096, 4096, "attention output"), ("gate_proj", 11008, 4096, "MLP input"), ("up_proj", 11008, 4096, "MLP input"),
        ("down_proj", 4096, 11008, "MLP hidden"),
    ];

    public static int Run(IReadOnlyList<string> args)
    {
        var device = BenchEnv.Device;
        var decomposer = new SafetySubspaceDecomposer(new SafetySubspaceOptions { ComputeType = ScalarType.Float32 });
        var projectorOptions = new NullSpaceOptions { ComputeType = ScalarType.Float32 };
        var setup = Stopwatch.StartNew();
        var inputs = new Dictionary<string, (Tensor Safety, Tensor Harmful)>();
        var seed = 100L;
        foreach (var (_, _, width, input) in Layers)
        {
            if (!inputs.ContainsKey(input))
            {
                inputs[input] = (
                    Inputs.Covariance(Inputs.SafetyTokens(width), width, seed++, device).DetachFromDisposeScope(),
                    Inputs.Covariance(Inputs.HarmfulTokens(width), width, seed++, device).DetachFromDisposeScope());
            }
        }

        Console.WriteLine($"Inputs built in {setup.Elapsed.TotalSeconds:F0} s (not timed below).");
        Console.WriteLine("| Step | Shape | Solver | Iterations | Time |");
        Console.WriteLine("|---|---|---|---:|---:|");
        var total = TimeSpan.Zero;                              // fits and decompositions only, not the inputs
        var projectors = new Dictionary<string, NullSpaceProjector>();
        foreach (var (layer, m, n, input) in Layers)
        {
            using var scope = NewDisposeScope();
            var weight = Inputs.Weight(m, n, seed++, device);
            if (!projectors.TryGetValue(input, out var projector))
            {
                var fit = Stopwatch.StartNew();
                projector = NullSpaceProjector.Fit(input, inputs[input].Harmful, projectorOptions);
                BenchEnv.Sync();
                projectors[input] = projector;
                total += fit.Elapsed;
                Console.WriteLine($"| projector ({input}) | {n} x {n} | eigh | - | {Seconds(fit)} |");
            }

            var watch = Stopwatch.StartNew();
            using var result = decomposer.Decompose(layer, weight, inputs[input].Safety, Rank, projector);
            BenchEnv.Sync();
            total += watch.Elapsed;
            var d = result.Diagnostics;
            Console.WriteLine($"| {layer} | {m} x {n} | {d.Solver}{(d.SolverFallbackReason is null ? string.Empty : " (fell back)")} | {d.SolverIterations} | {Seconds(watch)} |");
        }

        Console.WriteLine($"Whole block (7 layers, 4 projectors): {total.TotalSeconds.ToString("F1", CultureInfo.InvariantCulture)} s");
        foreach (var p in projectors.Values)
        {
            p.Dispose();
        }

        foreach (var (safety, harmful) in inputs.Values)
        {
            safety.Dispose();
            harmful.Dispose();
        }

        return 0;
    }

    private static string Seconds(Stopwatch watch) => $"{watch.Elapsed.TotalSeconds.ToString("F2", CultureInfo.InvariantCulture)} s";
}
