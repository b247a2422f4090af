using System.Globalization;
using GuardSpace.Projection;
using static TorchSharp.torch;

namespace GuardSpace.Benchmarks;

/// <summary>
/// <c>--memory-table</c>: bytes a layer's projector occupies in the library (<see cref="NullSpaceProjector.StoredBytes"/>: the
/// smaller of the null basis and its complement, float32) against the official dense n x n float32 P, for the
/// Llama-2-7B input widths 4096 (q/k/v/o/gate/up) and 11008 (down), with harmful calibrations of 2k and 10k tokens.
/// Width 4096 builds real projectors from synthetic anisotropic harmful covariances; width 11008 (an eigh of
/// 11008 x 11008 takes minutes on 2 cores) uses the storage rule n * min(d, n - d) * 4 with d = max(n - tokens, 0),
/// the null dimension the same synthetic covariance would give, unless <c>--build-wide</c> is passed.
/// </summary>
public static class MemoryTable
{
    private const int Float32Bytes = 4;

    public static void Run(List<string> args)
    {
        var buildWide = args.Contains("--build-wide");
        var options = new NullSpaceOptions { ComputeType = ScalarType.Float32 };
        var rows = new List<(long Width, long Tokens, long Null, long Stored, long Dense, string Source)>();
        foreach (var width in new long[] { 4096, 11008 })
        {
            foreach (var tokens in new long[] { 2000, 10000 })
            {
                var dense = width * width * Float32Bytes;
                if (width <= 4096 || buildWide)
                {
                    using var scope = NewDisposeScope();
                    var started = DateTime.UtcNow;
                    var covariance = Inputs.Covariance(tokens, width, seed: 51 + tokens, BenchEnv.Device);
                    using var projector = NullSpaceProjector.Fit($"w{width}_t{tokens}", covariance, options);
                    rows.Add((width, tokens, projector.NullDimension, projector.StoredBytes, dense,
                        $"measured (StoredBytes, {(DateTime.UtcNow - started).TotalSeconds:F0} s)"));
                }
                else
                {
                    var d = Math.Max(width - tokens, 0);
                    rows.Add((width, tokens, d, width * Math.Min(d, width - d) * Float32Bytes, dense, "rule n*min(d,n-d)*4"));
                }
            }
        }

        Console.WriteLine();
        Console.WriteLine("| Width n | Harmful tokens | Null dim d | Stored columns | Library bytes | Dense P bytes | Library / dense | Source |");
        Console.WriteLine("|--------:|---------------:|-----------:|---------------:|--------------:|--------------:|----------------:|--------|");
        foreach (var r in rows)
        {
            var columns = r.Stored / (r.Width * Float32Bytes);
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"| {r.Width} | {r.Tokens} | {r.Null} | {columns} | {Mb(r.Stored)} | {Mb(r.Dense)} | {(double)r.Stored / r.Dense:F3} | {r.Source} |"));
        }

        // Whole model: 32 layers; the library shares one projector per distinct input (q/k/v, o, gate/up, down),
        // the official code keeps a dense P in each of the 7 target layers.
        Console.WriteLine();
        Console.WriteLine("Llama-2-7B, 32 layers, all 7 target layers guarded (library: 4 projectors per layer, shared inputs; official: 7 dense P per layer):");
        Console.WriteLine("| Harmful tokens | Library total | Official dense total | Library / official |");
        Console.WriteLine("|---------------:|--------------:|---------------------:|-------------------:|");
        foreach (var tokens in new long[] { 2000, 10000 })
        {
            var narrow = rows.Single(r => r.Width == 4096 && r.Tokens == tokens);
            var wide = rows.Single(r => r.Width == 11008 && r.Tokens == tokens);
            var library = 32 * (3 * narrow.Stored + wide.Stored);
            var official = 32 * (6 * narrow.Dense + wide.Dense);
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"| {tokens} | {Gb(library)} | {Gb(official)} | {(double)library / official:F3} |"));
        }

        Console.WriteLine();
        Console.WriteLine("A null dimension of 0 means the layer has no null space: the library stores nothing and freezes the adapter (EmptyNullSpacePolicy.FreezeLayer); the official code keeps a dense P = 0.");
    }

    private static string Mb(long bytes) => string.Create(CultureInfo.InvariantCulture, $"{bytes / 1048576.0:F1} MiB");

    private static string Gb(long bytes) => string.Create(CultureInfo.InvariantCulture, $"{bytes / 1073741824.0:F2} GiB");
}
