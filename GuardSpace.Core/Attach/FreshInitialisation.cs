using GuardSpace.Adapters;
using GuardSpace.Collection;
using GuardSpace.Decomposition;
using GuardSpace.Internal;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace GuardSpace.Attach;

/// <summary>
/// The initial adapter of each layer of a new attachment: the decomposition's smallest components (GuardSpace, CorDA,
/// PiSSA, KPM) or PEFT's default LoRA initialisation, plus the harmful-output baseline the drift monitor compares with.
/// Owns the decompositions it makes until <see cref="Dispose"/>.
/// </summary>
internal sealed class FreshInitialisation : IDisposable
{
    private readonly AttachContext _context;
    private readonly SafetySubspaceDecomposer? _decomposer;
    private readonly CovarianceSet? _safety;
    private readonly CovarianceSet? _harmful;
    private readonly ProjectorFitting.Fitted? _fitted;
    private readonly List<LayerDecomposition> _decompositions = [];

    public FreshInitialisation(AttachContext context, CovarianceSet? safety, CovarianceSet? harmful, ProjectorFitting.Fitted? fitted)
    {
        _context = context;
        _safety = safety;
        _harmful = harmful;
        _fitted = fitted;
        var method = context.Options.Method;
        if (method.UsesDecomposition())
        {
            var subspace = context.Options.Subspace.Clone();
            subspace.Method = method.ToDecompositionMethod();
            _decomposer = new SafetySubspaceDecomposer(subspace, context.Logger);
        }
    }

    /// <summary>The initial state of layer <paramref name="index"/> (<paramref name="name"/>).</summary>
    public LayerInit Initialise(int index, string name, Linear layer, ProjectorHandle? projector)
    {
        var init = Factors(index, name, layer, projector);
        if (_fitted is null || !_fitted.FactorOf.TryGetValue(name, out var factor))
        {
            return init with { Group = _harmful?[name].Key ?? _safety?[name].Key };
        }

        var covariance = _harmful![name].Sum;
        return init with
        {
            Group = _harmful[name].Key,
            HarmfulFactor = factor,
            HarmfulEnergy = ProjectorFitting.OutputEnergy(layer.weight!, covariance),
            HarmfulMeanEigenvalue = ProjectorFitting.MeanEigenvalue(covariance),
        };
    }

    /// <inheritdoc />
    public void Dispose() => _decompositions.ForEach(d => d.Dispose());

    private LayerInit Factors(int index, string name, Linear layer, ProjectorHandle? projector)
    {
        var options = _context.Options;
        var weight = layer.weight!;
        if (_decomposer is not null)
        {
            var d = _decomposer.Decompose(name, weight, _safety?[name].Sum, options.Rank, projector?.Projector, _context.Cancellation);
            _decompositions.Add(d);

            // The residual was formed with s = 1; dividing B0 by s keeps s B0 A0 equal to what was removed.
            var b = options.Scale == 1.0 ? d.AdapterB : d.AdapterB / options.Scale;
            return new LayerInit(d.AdapterA, b, d.Residual, d.Diagnostics, null);
        }

        // PEFT's default LoRA: kaiming_uniform_(a = sqrt(5)) gives U(-1/sqrt(n), 1/sqrt(n)); B = 0 so W' = W.
        using var noGrad = no_grad();
        var generator = new Generator((ulong)(options.Seed + index));
        var bound = 1.0 / Math.Sqrt(layer.in_features);
        var factorType = AdapterPrecision.FactorType(weight.dtype);
        var a = (rand(options.Rank, layer.in_features, dtype: ScalarType.Float64, generator: generator) * (2 * bound) - bound)
            .to(factorType, weight.device);
        projector?.Projector.ProjectRowsInPlace(a);
        var zerosB = zeros(layer.out_features, options.Rank, dtype: factorType, device: weight.device);
        return new LayerInit(a, zerosB, null, null, null);
    }
}
