using BenchmarkDotNet.Attributes;
using TorchSharp;
using static TorchSharp.torch;
using GuardSpace.Collection;
using GuardSpace.Targeting;

namespace GuardSpace.Benchmarks;

/// <summary>
/// Cost of stage 0 (activation covariances) on top of a calibration forward pass: the Llama-shaped block with plain
/// Linear layers, 512 tokens, no grad. <see cref="ForwardOnly"/> is the baseline. <see cref="HookPerLayer"/> is the naive
/// collector (a forward hook per target Linear accumulating x^T x in float64: 7 n x n accumulators);
/// <see cref="HookSharedInputs"/> accumulates once per distinct input (q/k/v and gate/up share theirs: 4 accumulators),
/// which is what the design asks of the library. <c>LibraryCollector</c> measures
/// <c>ActivationCovarianceCollector</c>.
/// </summary>
public class CovarianceCollectionBenchmarks
{
    private LlamaBlock _block = null!;
    private Tensor _x = null!;
    private readonly List<IDisposable> _hooks = [];
    private readonly List<Tensor> _sums = [];
    private ActivationCovarianceCollector? _collector;

    [Params(512)]
    public int Tokens { get; set; }

    private void Build()
    {
        _block = LlamaBlock.WithLinear(BenchEnv.Device);
        _x = randn(1, Tokens, LlamaBlock.Hidden, generator: BenchEnv.Seeded(3)).to(BenchEnv.Device).DetachFromDisposeScope();
    }

    [GlobalSetup(Target = nameof(ForwardOnly))]
    public void SetupForward() => Build();

    [GlobalSetup(Target = nameof(HookPerLayer))]
    public void SetupPerLayer()
    {
        Build();
        foreach (var (layer, _) in _block.Targets)
        {
            var sum = Accumulator(layer);
            _hooks.Add(new Remover(layer.register_forward_hook((module, input, output) =>
            {
                Accumulate(sum, input);
                return null!;
            }).remove));
        }
    }

    [GlobalSetup(Target = nameof(HookSharedInputs))]
    public void SetupShared()
    {
        Build();
        var seen = new HashSet<string>();
        foreach (var (layer, input) in _block.Targets)
        {
            // q/k/v (and gate/up) read the same tensor: hook only the first layer of each input group.
            if (!seen.Add(input))
            {
                continue;
            }

            var sum = Accumulator(layer);
            _hooks.Add(new Remover(layer.register_forward_hook((module, x, output) =>
            {
                Accumulate(sum, x);
                return null!;
            }).remove));
        }
    }

    [GlobalSetup(Target = nameof(LibraryCollector))]
    public void SetupLibrary()
    {
        Build();
        _collector = new ActivationCovarianceCollector(_block, TargetModules.Suffixes("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"));
    }

    [GlobalSetup(Target = nameof(LibraryCollectorNoScaling))]
    public void SetupLibraryNoScaling() => SetupLibrary(new CovarianceCollectionOptions { Scaling = ActivationScaling.None });

    [GlobalSetup(Target = nameof(LibraryCollectorFloat32))]
    public void SetupLibraryFloat32() => SetupLibrary(new CovarianceCollectionOptions { AccumulationType = ScalarType.Float32 });

    private void SetupLibrary(CovarianceCollectionOptions options)
    {
        Build();
        _collector = new ActivationCovarianceCollector(_block, TargetModules.Suffixes("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"), options);
    }

    /// <summary>The library's collector with its defaults: the official per-sample max-abs scaling, float64 sums, shared inputs.</summary>
    [Benchmark]
    public void LibraryCollector() => Forward();

    /// <summary>The same without the official per-sample scaling (<see cref="ActivationScaling.None"/>): the scaling's cost.</summary>
    [Benchmark]
    public void LibraryCollectorNoScaling() => Forward();

    /// <summary>The same with float32 sums (<see cref="CovarianceCollectionOptions.AccumulationType"/>): the float64 products' cost.</summary>
    [Benchmark]
    public void LibraryCollectorFloat32() => Forward();

    [GlobalCleanup]
    public void Cleanup()
    {
        foreach (var h in _hooks)
        {
            h.Dispose();
        }

        _hooks.Clear();
        foreach (var s in _sums)
        {
            s.Dispose();
        }

        _sums.Clear();
        _collector?.Dispose();
        _collector = null;
        _block.Dispose();
        _x.Dispose();
    }

    [Benchmark(Baseline = true)]
    public void ForwardOnly() => Forward();

    [Benchmark]
    public void HookPerLayer() => Forward();

    [Benchmark]
    public void HookSharedInputs() => Forward();

    private void Forward()
    {
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        _block.call(_x);
        BenchEnv.Sync();
    }

    private Tensor Accumulator(nn.Module<Tensor, Tensor> layer)
    {
        var width = layer is TorchSharp.Modules.Linear linear ? linear.in_features : throw new InvalidOperationException("Linear expected");
        var sum = zeros(width, width, dtype: ScalarType.Float64, device: BenchEnv.Device).DetachFromDisposeScope();
        _sums.Add(sum);
        return sum;
    }

    private static void Accumulate(Tensor sum, Tensor input)
    {
        using var scope = NewDisposeScope();
        var x = input.detach().reshape(-1, input.shape[^1]).to_type(ScalarType.Float64);
        sum.addmm_(x.T, x, beta: 1, alpha: 1);
    }

    private sealed class Remover(Action remove) : IDisposable
    {
        public void Dispose() => remove();
    }
}
