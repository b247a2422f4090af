using BenchmarkDotNet.Attributes;
using GuardSpace.Decomposition;
using GuardSpace.Projection;
using TorchSharp;
using static TorchSharp.torch;

namespace GuardSpace.Benchmarks;

/// <summary>
/// Per-layer cost of GuardSpace's stage I + II (decomposition and projector) in float32, r = 16, against
/// <see cref="KernelFloor"/>: the two factorisations no implementation can avoid (one thin SVD of W C, one eigh of C_h).
/// Shapes are "out x in". Inputs: <see cref="Inputs"/>.
/// </summary>
public abstract class DecompositionBenchmarksBase
{
    public const int Rank = 16;

    private static readonly SafetySubspaceDecomposer Decomposer = new(new SafetySubspaceOptions { ComputeType = ScalarType.Float32, Solver = DecompositionSolver.FullSvd });
    private static readonly SafetySubspaceDecomposer IterativeDecomposer = new(new SafetySubspaceOptions { ComputeType = ScalarType.Float32, Solver = DecompositionSolver.Iterative });
    private static readonly NullSpaceOptions ProjectorOptions = new() { ComputeType = ScalarType.Float32 };

    private Tensor _weight = null!;
    private Tensor _safety = null!;
    private Tensor _harmful = null!;
    private Tensor _dampedSafety = null!;

    /// <summary>The shapes of this suite; the environment variable GUARDSPACE_BENCH_SHAPES (comma-separated, e.g. "512x512") overrides them (CI dry runs).</summary>
    public IEnumerable<string> Shapes =>
        Environment.GetEnvironmentVariable("GUARDSPACE_BENCH_SHAPES") is { Length: > 0 } list
            ? list.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
            : DefaultShapes;

    protected abstract IEnumerable<string> DefaultShapes { get; }

    [ParamsSource(nameof(Shapes))]
    public string Shape { get; set; } = "512x512";

    [GlobalSetup]
    public void Setup()
    {
        var (m, n) = ParseShape(Shape);
        _weight = Inputs.Weight(m, n, seed: 11, BenchEnv.Device).DetachFromDisposeScope();
        _safety = Inputs.Covariance(Inputs.SafetyTokens(n), n, seed: 21, BenchEnv.Device).DetachFromDisposeScope();
        _harmful = Inputs.Covariance(Inputs.HarmfulTokens(n), n, seed: 31, BenchEnv.Device).DetachFromDisposeScope();

        // The floor factorises exactly what the library factorises: W C_l with the damping the library settles on
        // (the SVD's speed depends on the spectrum, so W C_s undamped would not be the same work).
        using (var probe = Decomposer.Decompose("layer", _weight, _safety, Rank))
        {
            _dampedSafety = _safety.clone().DetachFromDisposeScope();
            _dampedSafety.diagonal().add_(probe.Diagnostics.DampingAbsolute);
        }

        BenchEnv.Sync();
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _weight.Dispose();
        _safety.Dispose();
        _harmful.Dispose();
        _dampedSafety.Dispose();
    }

    /// <summary>One thin SVD of W C_l (including the product; C_l damped as the library damps it, precomputed) plus one eigh of C_h; nothing else.</summary>
    [Benchmark(Baseline = true)]
    public void KernelFloor()
    {
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        linalg.svd(_weight.mm(_dampedSafety), fullMatrices: false);
        linalg.eigh(_harmful);
        BenchEnv.Sync();
    }

    /// <summary>The library with the full SVD (<see cref="DecompositionSolver.FullSvd"/>): NullSpaceProjector.Fit (eigh, threshold, basis) + SafetySubspaceDecomposer.Decompose (checks, damping, SVD, r-column back-transform, projected A0, residual).</summary>
    [Benchmark]
    public void GuardSpace()
    {
        using var scope = NewDisposeScope();
        using var projector = NullSpaceProjector.Fit("layer", _harmful, ProjectorOptions);
        using var result = Decomposer.Decompose("layer", _weight, _safety, Rank, projector);
        BenchEnv.Sync();
    }

    /// <summary>The official algorithm (explicit inverse + residual loop, full back-transform, QR, dense P).</summary>
    [Benchmark]
    public void OfficialPipeline()
    {
        using var scope = NewDisposeScope();
        using var result = Benchmarks.OfficialPipeline.Run(_weight, _safety, _harmful, Rank);
        BenchEnv.Sync();
    }

    /// <summary>
    /// The library with <see cref="DecompositionSolver.Iterative"/> (what Auto picks for r = 16 from width 512 on): the r smallest
    /// triplets by float64 block inverse iteration instead of a full SVD; same projector, damping, back-transform and residual.
    /// </summary>
    [Benchmark]
    public void GuardSpaceIterative()
    {
        using var scope = NewDisposeScope();
        using var projector = NullSpaceProjector.Fit("layer", _harmful, ProjectorOptions);
        using var result = IterativeDecomposer.Decompose("layer", _weight, _safety, Rank, projector);
        if (result.Diagnostics.Solver != DecompositionSolver.Iterative)
        {
            throw new InvalidOperationException($"The iterative solver fell back: {result.Diagnostics.SolverFallbackReason}");
        }

        BenchEnv.Sync();
    }

    public static (long M, long N) ParseShape(string shape)
    {
        var parts = shape.Split('x');
        return (long.Parse(parts[0], System.Globalization.CultureInfo.InvariantCulture), long.Parse(parts[1], System.Globalization.CultureInfo.InvariantCulture));
    }
}

/// <summary>Square layers of width 512, 1024, 2048 (category Default).</summary>
[BenchmarkCategory("Default")]
public class DecompositionBenchmarks : DecompositionBenchmarksBase
{
    protected override IEnumerable<string> DefaultShapes => ["512x512", "1024x1024", "2048x2048"];
}

/// <summary>Llama-2-7B shapes: q/k/v/o 4096x4096, gate/up 11008x4096, down 4096x11008 (category Llama; minutes per invocation on 2 cores).</summary>
[BenchmarkCategory("Llama")]
public class LlamaDecompositionBenchmarks : DecompositionBenchmarksBase
{
    protected override IEnumerable<string> DefaultShapes => ["4096x4096", "11008x4096", "4096x11008"];
}
