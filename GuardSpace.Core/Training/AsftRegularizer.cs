using GuardSpace.Adapters;
using GuardSpace.Internal;
using TorchSharp;
using static TorchSharp.torch;

namespace GuardSpace.Training;

/// <summary>
/// The AsFT baseline (the paper's strongest): a loss term <c>lambda * sum_l ||(I - C^) s B A||_F^2</c> that keeps each
/// adapter's update near the alignment direction, with <c>C^ = V V^T / ||V||_F</c> and <c>V = W_aligned - W_base</c>
/// per layer. Add <see cref="Penalty"/> to the task loss. Computed as <c>||(s B - C^ s B) A||_F^2</c>, which never forms
/// an m x n or n x n matrix: O(m n r) per layer.
/// </summary>
public sealed class AsftRegularizer : IDisposable
{
    private readonly IReadOnlyDictionary<string, GuardedLoraAdapter> _adapters;
    private readonly Dictionary<string, (Tensor V, double Norm)> _directions = new(StringComparer.Ordinal);

    /// <summary>Creates the regulariser.</summary>
    /// <param name="adapters">The adapters to regularise, keyed by layer (<c>GuardedModel.Adapters</c>; usually <see cref="InitializationMethod.Lora"/>).</param>
    /// <param name="baseWeights">Weights of the base (unaligned) model, keyed by the layer's dotted path.</param>
    /// <param name="alignedWeights">Weights of the aligned model, keyed the same way.</param>
    /// <param name="lambda">The penalty weight (the AsFT paper uses values around 1).</param>
    /// <exception cref="ArgumentException">A guarded layer has no weight in either set, or shapes differ.</exception>
    public AsftRegularizer(IReadOnlyDictionary<string, GuardedLoraAdapter> adapters, IReadOnlyDictionary<string, Tensor> baseWeights, IReadOnlyDictionary<string, Tensor> alignedWeights, double lambda)
    {
        _adapters = adapters ?? throw new ArgumentNullException(nameof(adapters));
        ArgumentNullException.ThrowIfNull(baseWeights);
        ArgumentNullException.ThrowIfNull(alignedWeights);
        if (!double.IsFinite(lambda) || lambda < 0)
        {
            throw new ArgumentOutOfRangeException(nameof(lambda), lambda, "The AsFT penalty weight must be finite and non-negative.");
        }

        Lambda = lambda;
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        foreach (var adapter in adapters.Values)
        {
            var name = adapter.LayerName;
            if (!baseWeights.TryGetValue(name, out var w0) || !alignedWeights.TryGetValue(name, out var w1))
            {
                throw new ArgumentException($"Layer '{name}': AsFT needs its weight in both the base and the aligned weight sets (keyed by module path).");
            }

            var expected = new[] { adapter.OutFeatures, adapter.InFeatures };
            if (!w0.shape.SequenceEqual(expected) || !w1.shape.SequenceEqual(expected))
            {
                throw new ArgumentException($"Layer '{name}': base and aligned weights must be {expected[0]} x {expected[1]}; got [{string.Join(", ", w0.shape)}] and [{string.Join(", ", w1.shape)}].");
            }

            var type = AdapterPrecision.ComputeType(adapter.LoraB.dtype);
            var v = (w1.to(ScalarType.Float64, adapter.LoraB.device) - w0.to(ScalarType.Float64, adapter.LoraB.device));
            var norm = v.norm().ToDouble();
            if (!(norm > 0))
            {
                throw new ArgumentException($"Layer '{name}': the aligned and base weights are identical, so AsFT has no alignment direction for it. Exclude it from the targets.");
            }

            _directions[name] = (v.to_type(type).DetachFromDisposeScope(), norm);
        }
    }

    /// <summary>The penalty weight lambda.</summary>
    public double Lambda { get; }

    /// <summary>The penalty for the adapters' current factors, a differentiable scalar on the adapters' device.</summary>
    public Tensor Penalty()
    {
        using var scope = NewDisposeScope();
        Tensor? total = null;
        foreach (var adapter in _adapters.Values)
        {
            var (v, norm) = _directions[adapter.LayerName];
            var b = adapter.LoraB * adapter.Scale;
            var d = b - v.matmul(v.T.matmul(b)) / norm;       // (I - C^) s B, m x r
            var a = adapter.LoraA;
            var term = (d.T.matmul(d) * a.matmul(a.T)).sum();  // ||D A||_F^2 = <D^T D, A A^T>
            total = total is null ? term : total + term;
        }

        return ((total ?? tensor(0.0)) * Lambda).MoveToOuterDisposeScope();
    }

    /// <inheritdoc />
    public void Dispose()
    {
        foreach (var (v, _) in _directions.Values)
        {
            v.Dispose();
        }

        _directions.Clear();
    }
}
