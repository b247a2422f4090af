using BenchmarkDotNet.Attributes;
using GuardSpace.Projection;
using TorchSharp;
using static TorchSharp.torch;
using GuardSpace.Adapters;
using GuardSpace.Training;

namespace GuardSpace.Benchmarks;

/// <summary>
/// One LoRA training step (forward, backward, Adam step) of a Llama-shaped block (hidden 1024, MLP 2816, 8 heads,
/// seven adapted layers), 512 tokens, float32:
/// <list type="bullet">
/// <item><see cref="PlainLora"/> (baseline): plain LoRA, inner Adam;</item>
/// <item><see cref="GuardSpaceHook"/>: the library's <see cref="GuardedModel"/> with its default options, through
/// <see cref="GuardedModel.WrapOptimizer"/>: grad(A) &lt;- grad(A) P plus the harmful-drift penalty gradient before the
/// step and A &lt;- A P after it (stored basis, one projector per distinct input);</item>
/// <item><see cref="GuardSpaceOfficialHook"/>: the same with <see cref="GuardedLoraOptions.Official"/> (projection only);</item>
/// <item><see cref="GuardSpaceFallbackHook"/>: the default options on harmful activations that fill every input (4n
/// tokens with a decaying spectrum): every layer falls back to the 99% energy rule, so the drift penalty's factor
/// covers the whole null space (its most expensive case);</item>
/// <item><see cref="ForwardProjection"/>: the official formulation, a dense n x n P applied to every token, y = W x + B(A(P x)).</item>
/// </list>
/// Projectors are fitted on synthetic harmful covariances with n/2 tokens (null space of dimension n/2, the largest
/// stored basis the library can keep: n x n/2).
/// </summary>
public class TrainingStepBenchmarks
{
    public const long Tokens = 512;

    private LlamaBlock _block = null!;
    private torch.optim.Optimizer _optimizer = null!;
    private Dictionary<string, NullSpaceProjector> _projectors = [];
    private readonly List<Tensor> _owned = [];
    private Tensor _x = null!;
    private Tensor _target = null!;
    private List<(LoraLinear Layer, NullSpaceProjector Projector)> _guarded = [];
    private GuardedModel? _guardedModel;

    [Params(16, 64)]
    public int Rank { get; set; }

    [GlobalSetup(Target = nameof(PlainLora))]
    public void SetupPlain() => Build(project: false, forward: false);

    [GlobalSetup(Target = nameof(HookOverheadOnly))]
    public void SetupOverhead()
    {
        Build(project: true, forward: false);
        Step(guard: true); // gradients exist from here on
    }

    [GlobalSetup(Target = nameof(HookOverheadBatched))]
    public void SetupOverheadBatched() => SetupOverhead();

    [GlobalSetup(Target = nameof(ForwardProjection))]
    public void SetupForward() => Build(project: true, forward: true);

    [GlobalSetup(Target = nameof(GuardSpaceHook))]
    public void SetupLibraryDefault() => SetupLibrary(official: false);

    [GlobalSetup(Target = nameof(GuardSpaceOfficialHook))]
    public void SetupLibraryOfficial() => SetupLibrary(official: true);

    [GlobalSetup(Target = nameof(GuardSpaceFallbackHook))]
    public void SetupLibraryFallback() => SetupLibrary(official: false, fillInputs: true);

    [GlobalSetup(Target = nameof(LibraryHookOnly))]
    public void SetupLibraryHookOnly()
    {
        SetupLibrary(official: true);
        Step(guard: false); // gradients exist from here on
    }

    [GlobalSetup(Target = nameof(LibraryHookDefaultOnly))]
    public void SetupLibraryHookDefaultOnly()
    {
        SetupLibrary(official: false);
        Step(guard: false);
    }

    private void SetupLibrary(bool official, bool fillInputs = false)
    {
        var device = BenchEnv.Device;
        _x = randn(1, Tokens, LlamaBlock.Hidden, generator: BenchEnv.Seeded(1)).to(device).DetachFromDisposeScope();
        _target = randn(1, Tokens, LlamaBlock.Hidden, generator: BenchEnv.Seeded(2)).to(device).DetachFromDisposeScope();
        _block = LlamaBlock.WithLinear(device);
        _guardedModel = LibraryAdapters.Attach(_block, Rank, official, fillInputs);
        _optimizer = _guardedModel.WrapOptimizer(torch.optim.Adam(_guardedModel.TrainableParameters(), lr: 1e-4));
        BenchEnv.Sync();
    }

    private void Build(bool project, bool forward)
    {
        var device = BenchEnv.Device;
        _x = randn(1, Tokens, LlamaBlock.Hidden, generator: BenchEnv.Seeded(1)).to(device).DetachFromDisposeScope();
        _target = randn(1, Tokens, LlamaBlock.Hidden, generator: BenchEnv.Seeded(2)).to(device).DetachFromDisposeScope();
        _block = LlamaBlock.WithLora(Rank, device);
        _projectors = [];
        if (project)
        {
            _projectors = FitProjectors(device);
            foreach (var (layer, input) in _block.Adapters)
            {
                var projector = _projectors[input];
                projector.ProjectRowsInPlace(layer.A);
                if (forward)
                {
                    var dense = projector.ProjectRows(eye(projector.InputWidth, device: device)).DetachFromDisposeScope(); // I P = P
                    _owned.Add(dense);
                    layer.ForwardProjector = dense;
                }
                else
                {
                    _guarded.Add((layer, projector));
                }
            }
        }

        _optimizer = torch.optim.Adam(_block.parameters().Where(p => p.requires_grad), lr: 1e-4);
        BenchEnv.Sync();
    }

    /// <summary>One projector per distinct input (q/k/v share, gate/up share), from n/2 harmful tokens.</summary>
    public static Dictionary<string, NullSpaceProjector> FitProjectors(Device device)
    {
        var options = new NullSpaceOptions { ComputeType = ScalarType.Float32 };
        var result = new Dictionary<string, NullSpaceProjector>();
        var seed = 41L;
        foreach (var (input, width) in LlamaBlock.InputWidths)
        {
            using var scope = NewDisposeScope();
            var covariance = Inputs.Covariance(Inputs.HarmfulTokens(width), width, seed++, device);
            result[input] = NullSpaceProjector.Fit(input, covariance, options);
        }

        return result;
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _optimizer.Dispose();
        _block.Dispose();
        foreach (var p in _projectors.Values)
        {
            p.Dispose();
        }

        foreach (var t in _owned)
        {
            t.Dispose();
        }

        _owned.Clear();
        _guarded = [];
        _x.Dispose();
        _target.Dispose();
        _guardedModel?.Dispose();
        _guardedModel = null;
    }

    [Benchmark(Baseline = true)]
    public void PlainLora() => Step(guard: false);

    [Benchmark]
    public void GuardSpaceHook() => Step(guard: true);

    /// <summary>The library's official preset: projection only, no drift penalty.</summary>
    [Benchmark]
    public void GuardSpaceOfficialHook() => Step(guard: false);

    /// <summary>The default options where every layer fell back to the energy rule: the drift penalty at its largest.</summary>
    [Benchmark]
    public void GuardSpaceFallbackHook() => Step(guard: false);

    [Benchmark]
    public void ForwardProjection() => Step(guard: false);

    /// <summary>Only the work the hook adds to a step (grad(A) P and A P for the seven adapters): small, so its ratio to
    /// <see cref="PlainLora"/> estimates the overhead far more stably than the difference of two noisy step times.</summary>
    [Benchmark]
    public void HookOverheadOnly()
    {
        using var scope = NewDisposeScope();
        foreach (var (layer, projector) in _guarded)
        {
            using var grad = layer.A.grad!;
            projector.ProjectRowsInPlace(grad);
            projector.ProjectRowsInPlace(layer.A);
        }

        BenchEnv.Sync();
    }

    /// <summary>
    /// The same work as <see cref="HookOverheadOnly"/>, batched per projector: the rows of every adapter that shares a
    /// projector (q/k/v, gate/up) are concatenated and projected in one product, so each basis is read once per phase.
    /// A candidate optimisation for the library's GuardedOptimizer, measured here to size it.
    /// </summary>
    [Benchmark]
    public void HookOverheadBatched()
    {
        using var scope = NewDisposeScope();
        foreach (var group in _guarded.GroupBy(g => g.Projector))
        {
            var layers = group.Select(g => g.Layer).ToList();
            ProjectBatched(group.Key, layers.Select(l => l.A.grad!).ToList());
            ProjectBatched(group.Key, layers.Select(l => (Tensor)l.A).ToList());
        }

        BenchEnv.Sync();
    }

    /// <summary>
    /// The library's own hook work, alone: <see cref="GuardedModel.AfterBackward"/> and <see cref="GuardedModel.AfterStep"/>
    /// of a <see cref="GuardedModel"/> with <see cref="GuardedLoraOptions.Official"/> (projection only), exactly what
    /// <see cref="GuardedOptimizer"/> adds around the inner step. Its ratio to <see cref="PlainLora"/> is the hook's
    /// share of a step, measured in the same run.
    /// </summary>
    [Benchmark]
    public void LibraryHookOnly() => HookAlone();

    /// <summary>The same with the library's default options: the harmful-drift penalty's gradient plus the projections.</summary>
    [Benchmark]
    public void LibraryHookDefaultOnly() => HookAlone();

    private void HookAlone()
    {
        _guardedModel!.AfterBackward();
        _guardedModel.AfterStep();
        BenchEnv.Sync();
    }

    private static void ProjectBatched(NullSpaceProjector projector, IReadOnlyList<Tensor> parts)
    {
        using var noGrad = no_grad();
        if (parts.Count == 1)
        {
            projector.ProjectRowsInPlace(parts[0]);
            return;
        }

        var stacked = cat(parts.ToArray(), 0);
        projector.ProjectRowsInPlace(stacked);
        long row = 0;
        foreach (var part in parts)
        {
            part.copy_(stacked.narrow(0, row, part.shape[0]));
            row += part.shape[0];
        }
    }

    private void Step(bool guard)
    {
        using var scope = NewDisposeScope();
        _optimizer.zero_grad();
        var loss = nn.functional.mse_loss(_block.call(_x), _target);
        loss.backward();
        if (guard)
        {
            // The stand-in list is empty for the library's GuardedModel: its wrapped optimizer projects inside step().
            foreach (var (layer, projector) in _guarded)
            {
                using var grad = layer.A.grad!;
                projector.ProjectRowsInPlace(grad);
            }
        }

        _optimizer.step();
        if (guard)
        {
            foreach (var (layer, projector) in _guarded)
            {
                projector.ProjectRowsInPlace(layer.A);
            }
        }

        BenchEnv.Sync();
    }
}
