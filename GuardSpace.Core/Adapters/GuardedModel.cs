using GuardSpace.Collection;
using GuardSpace.Decomposition;
using GuardSpace.Diagnostics;
using GuardSpace.Internal;
using GuardSpace.Projection;
using GuardSpace.Serialization;
using GuardSpace.Targeting;
using GuardSpace.Training;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace GuardSpace.Adapters;

/// <summary>
/// A model with guarded LoRA adapters attached: the handle returned by <see cref="Attach"/>. It lists the adapters, their
/// trainable parameters, the shared projectors and per-layer reports, and runs the optimizer hook that keeps every
/// guarded adapter inside its null space (<see cref="AfterBackward"/>, <see cref="AfterStep"/>, or
/// <see cref="WrapOptimizer"/> to have an optimizer call them).
/// Disposing it frees the projectors; the model keeps its adapters.
/// </summary>
public sealed partial class GuardedModel : IDisposable
{
    private readonly List<GuardedLoraAdapter> _adapters;
    private readonly List<ProjectorHandle> _projectors;
    private readonly ILogger _logger;
    private readonly List<IGrouping<ProjectorHandle, GuardedLoraAdapter>> _projectionGroups;
    private List<HarmfulCovarianceFactor> _factors = [];
    private readonly SurgeryUndo _surgery;
    private bool _disposed;

    private GuardedModel(Module model, GuardedLoraOptions options, List<GuardedLoraAdapter> adapters, List<ProjectorHandle> projectors, IReadOnlyList<LayerAttachReport> layers, ILogger logger, SurgeryUndo surgery)
    {
        Model = model;
        _surgery = surgery;
        Options = options;
        _adapters = adapters;
        _projectors = projectors;
        Layers = layers;
        _logger = logger;
        Adapters = adapters.ToDictionary(a => a.LayerName, StringComparer.Ordinal);
        _projectionGroups = [.. adapters.Where(a => a.Projector is not null).GroupBy(a => a.Projector!)];
        Projectors = projectors.ToDictionary(p => p.Projector.Name, p => p.Projector, StringComparer.Ordinal);
    }

    /// <summary>The model the adapters live in.</summary>
    public Module Model { get; }

    /// <summary>The options the adapters were attached with.</summary>
    public GuardedLoraOptions Options { get; }

    /// <summary>The adapters, keyed by the dotted path of the layer each one guards.</summary>
    public IReadOnlyDictionary<string, GuardedLoraAdapter> Adapters { get; }

    /// <summary>What was done to each layer, in module order.</summary>
    public IReadOnlyList<LayerAttachReport> Layers { get; }

    /// <summary>The null-space projectors, keyed by covariance group (one per group of layers that read the same input).</summary>
    public IReadOnlyDictionary<string, INullSpaceProjector> Projectors { get; private set; } = new Dictionary<string, INullSpaceProjector>();

    /// <summary>True while the adapters are merged into the frozen weights (<see cref="Merge"/>).</summary>
    public bool IsMerged => _adapters.Count > 0 && _adapters[0].IsMerged;

    /// <summary>
    /// Attaches guarded LoRA adapters to <paramref name="model"/> in one transaction: it selects the target Linear layers,
    /// collects the calibration covariances the method needs, fits the projectors, decomposes the weights, and only then
    /// replaces the layers. If any step fails, the model is left exactly as it was (parameters, structure, flags).
    /// </summary>
    /// <param name="model">Any TorchSharp module whose target layers are managed <see cref="TorchSharp.Modules.Linear"/> modules.</param>
    /// <param name="options">Rank, method, targets and the sub-options (validated).</param>
    /// <param name="calibration">Calibration callbacks or covariances; required by CorDA, NullSpace-LoRA and GuardSpace.</param>
    /// <param name="loggerFactory">Receives warnings (empty null spaces, too few calibration tokens) and progress.</param>
    /// <param name="progress">Stage-by-stage progress.</param>
    /// <param name="cancellationToken">
    /// Checked between stages and layers, and before each layer's surgery; a cancelled Attach leaves the model unchanged.
    /// The commit point is the end of the surgery stage, before the final "surgery" progress report: a cancellation
    /// after it is ignored and Attach returns the guarded model.
    /// </param>
    /// <returns>The handle with the adapters, trainable parameters, projectors and reports.</returns>
    /// <exception cref="InvalidOperationException">The model already holds GuardSpace adapters (see <see cref="Detach"/>).</exception>
    public static GuardedModel Attach(
        Module model,
        GuardedLoraOptions options,
        CalibrationData? calibration = null,
        ILoggerFactory? loggerFactory = null,
        IProgress<AttachProgress>? progress = null,
        CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        options = options.Clone(); // later changes to the caller's object must not change what Save writes
        var logger = loggerFactory?.CreateLogger("GuardSpace") ?? NullLogger.Instance;
        var method = options.Method;
        ExistingAdapters.ThrowIfGuarded(model);
        var targets = LinearLayerSelector.Select(model, options.Targets);
        CheckTargets(targets, options.Rank);

        var ownedSets = new List<CovarianceSet>();
        var projectors = new List<ProjectorHandle>();
        var factors = new List<HarmfulCovarianceFactor>();
        var built = new List<GuardedLoraAdapter>();
        var decompositions = new List<LayerDecomposition>();
        try
        {
            var names = targets.Select(t => t.Name).ToArray();
            var safety = method.NeedsSafetyCovariance()
                ? Covariances("safety", calibration?.SafetyCovariances, calibration?.RunSafetyPrompts, model, names, options, logger, progress, ownedSets, cancellationToken)
                : null;
            var tracksDrift = options.TracksHarmfulDrift;
            var harmful = method.UsesProjector() || tracksDrift
                ? Covariances("harmful", calibration?.HarmfulCovariances, calibration?.RunHarmfulPrompts, model, names, options, logger, progress, ownedSets, cancellationToken)
                : null;

            // One projector per covariance group (q/k/v share one).
            var projectorOf = new Dictionary<string, ProjectorHandle>(StringComparer.Ordinal);
            var factorOf = new Dictionary<string, HarmfulCovarianceFactor>(StringComparer.Ordinal);
            if (harmful is not null)
            {
                var groups = names.Select(n => harmful[n]).Distinct().ToList();
                for (var i = 0; i < groups.Count; i++)
                {
                    cancellationToken.ThrowIfCancellationRequested();
                    progress?.Report(new AttachProgress("null spaces", i, groups.Count, groups[i].Key));
                    HarmfulCovarianceFactor? factor = null;
                    if (method.UsesProjector())
                    {
                        var (projector, f) = NullSpaceProjector.Fit(groups[i].Key, groups[i].Sum, GroupNullSpace(options, groups[i]), logger, groups[i].Layers, tracksDrift);
                        var handle = new ProjectorHandle(projector);
                        projectors.Add(handle);
                        factor = f;
                        foreach (var layer in groups[i].Layers)
                        {
                            projectorOf[layer] = handle;
                        }
                    }
                    else
                    {
                        factor = HarmfulCovarianceFactor.FromCovariance(groups[i].Key, groups[i].Sum);
                    }

                    if (factor is not null)
                    {
                        factors.Add(factor);
                        foreach (var layer in groups[i].Layers)
                        {
                            factorOf[layer] = factor;
                        }
                    }
                }
            }

            var decomposer = method.UsesDecomposition()
                ? new SafetySubspaceDecomposer(CopyWithMethod(options.Subspace, method.ToDecompositionMethod()), logger)
                : null;
            return AttachCore(model, options, targets, projectorOf, projectors, built, logger, progress, cancellationToken, (index, name, layer, projector) =>
            {
                var init = Initialise(name, layer, options, index, decomposer, safety, projector, decompositions, cancellationToken);
                factorOf.TryGetValue(name, out var factor);
                var energy = factor is null ? 0 : OutputEnergy(layer.weight!, harmful![name].Sum);
                var mean = factor is null ? 0 : MeanEigenvalue(harmful![name].Sum);
                return init with { Group = harmful?[name].Key ?? safety?[name].Key, HarmfulFactor = factor, HarmfulEnergy = energy, HarmfulMeanEigenvalue = mean };
            }, factors);
        }
        catch
        {
            ReleaseAfterFailure(built);
            projectors.ForEach(p => p.Dispose());
            factors.ForEach(f => f.Dispose());
            throw;
        }
        finally
        {
            decompositions.ForEach(d => d.Dispose());
            ownedSets.ForEach(s => s.Dispose());
        }
    }

    /// <summary>Per-layer initial state handed to <see cref="AttachCore"/>.</summary>
    internal readonly record struct LayerInit(Tensor A, Tensor B, Tensor? Residual, DecompositionDiagnostics? Diagnostics, string? Group)
    {
        /// <summary>The harmful covariance factor of the layer's group, when the drift is tracked.</summary>
        public HarmfulCovarianceFactor? HarmfulFactor { get; init; }

        /// <summary><c>||W C_h^(1/2)||_F^2</c> of the original weight.</summary>
        public double HarmfulEnergy { get; init; }

        /// <summary><c>tr(C_h) / n</c> of the layer's group.</summary>
        public double HarmfulMeanEigenvalue { get; init; }
    }

    /// <summary>
    /// Builds an adapter per target from <paramref name="initialise"/> without touching the model, then commits the
    /// surgery as one transaction. Shared by <see cref="Attach"/> and <see cref="Load"/>.
    /// </summary>
    internal static GuardedModel AttachCore(
        Module model,
        GuardedLoraOptions options,
        IReadOnlyList<(string Name, Linear Layer)> targets,
        Dictionary<string, ProjectorHandle> projectorOf,
        List<ProjectorHandle> projectors,
        List<GuardedLoraAdapter> built,
        ILogger logger,
        IProgress<AttachProgress>? progress,
        CancellationToken cancellationToken,
        Func<int, string, Linear, ProjectorHandle?, LayerInit> initialise,
        List<HarmfulCovarianceFactor>? factors = null)
    {
        // Decide how each layer is intercepted before touching anything.
        var plans = targets.Select(t =>
        {
            var (parent, child) = ModuleSurgery.ResolveParent(model, t.Name);
            var replace = ModuleSurgery.CanReplace(parent, child, t.Layer, typeof(GuardedLoraAdapter));
            return (t.Name, t.Layer, Parent: parent, Child: child, Mode: replace ? InterceptionMode.Replaced : InterceptionMode.ForwardHook);
        }).ToList();

        var residuals = new Dictionary<string, Tensor>(StringComparer.Ordinal);
        var reports = new List<LayerAttachReport>();
        using var scope = NewDisposeScope();
        for (var i = 0; i < plans.Count; i++)
        {
            cancellationToken.ThrowIfCancellationRequested();
            var plan = plans[i];
            progress?.Report(new AttachProgress("decomposition", i, plans.Count, plan.Name));
            projectorOf.TryGetValue(plan.Name, out var projector);
            var init = initialise(i, plan.Name, plan.Layer, projector);
            var hook = plan.Mode == InterceptionMode.ForwardHook;
            Parameter? weight = null;
            if (!hook)
            {
                weight = init.Residual is null ? plan.Layer.weight! : new Parameter(init.Residual.detach().clone(), requires_grad: false);
                weight.DetachFromDisposeScope();
            }
            else if (init.Residual is not null)
            {
                residuals[plan.Name] = init.Residual;
            }

            var adapter = new GuardedLoraAdapter(plan.Name, weight, hook ? null : plan.Layer.bias, init.A, init.B, options.Scale, hook ? plan.Layer : null)
            {
                Projector = projector,
                OwnsWeight = !hook && init.Residual is not null,
                HarmfulFactor = init.HarmfulFactor,
                HarmfulEnergy = init.HarmfulEnergy,
                HarmfulMeanEigenvalue = init.HarmfulMeanEigenvalue,
                FrozenWeightIsOriginal = init.Residual is null,
                OriginalWeight = WeightFingerprint.Of(plan.Layer.weight!),
            };
            built.Add(adapter);
            var frozen = projector?.Projector.NullDimension == 0;
            adapter.SetFrozen(frozen);
            reports.Add(new LayerAttachReport(
                plan.Name, plan.Layer.out_features, plan.Layer.in_features, adapter.Rank, options.Method, plan.Mode,
                hook ? plan.Name + HookSuffix : plan.Name, init.Group, init.Diagnostics, projector?.Projector.Diagnostics, frozen));
        }

        progress?.Report(new AttachProgress("surgery", 0, plans.Count, null));
        var surgery = Commit(model, options, plans.Select(p => (p.Name, p.Layer, p.Parent, p.Child, p.Mode)).ToList(), built, residuals, cancellationToken);
        var guarded = new GuardedModel(model, options, built, projectors, reports, logger, surgery) { _factors = factors ?? [] };
        Log.Attached(logger, options.Method.ToString(), built.Count, built.Count(a => a.IsFrozen), guarded.TrainableParameters().Sum(p => p.NumberOfElements));
        progress?.Report(new AttachProgress("surgery", plans.Count, plans.Count, null));
        return guarded;
    }

    /// <summary>The suffix of the adapter module registered beside a Linear that is intercepted with a forward hook.</summary>
    public const string HookSuffix = "_guard";

    /// <summary>The adapter factors that train (A and B of every adapter that is not frozen). Look them up again after <c>.to()</c>.</summary>
    public IReadOnlyList<Parameter> TrainableParameters()
    {
        ThrowIfDisposed();
        return [.. _adapters.Where(a => !a.IsFrozen).SelectMany(a => new[] { a.LoraA, a.LoraB })];
    }

    /// <summary>
    /// Wraps <paramref name="inner"/> so that its <c>step()</c> projects the gradients of A, runs the inner step, and
    /// re-projects A in place. Build <paramref name="inner"/> on <see cref="TrainableParameters"/> after any <c>.to()</c>.
    /// </summary>
    public GuardedOptimizer WrapOptimizer(optim.Optimizer inner)
    {
        ThrowIfDisposed();
        return new GuardedOptimizer(inner, this);
    }

    /// <summary>
    /// Call after <c>backward()</c> and before <c>optimizer.step()</c> in a hand-written loop: replaces the gradient of every
    /// guarded A by <c>grad(A) P</c>, in place, on the adapter's device.
    /// </summary>
    public void AfterBackward()
    {
        ThrowIfDisposed();
        using var scope = NewDisposeScope();

        var lambda = Options.EffectiveHarmfulDriftPenalty;
        if (lambda > 0)
        {
            foreach (var adapter in _adapters)
            {
                if (!adapter.IsFrozen)
                {
                    HarmfulDrift.AddPenaltyGradient(adapter, lambda, Options.HarmfulDriftFloor);
                }
            }
        }

        foreach (var group in _projectionGroups)
        {
            var grads = group.Where(a => !a.IsFrozen).Select(a => a.LoraA.grad).OfType<Tensor>().ToList();
            ProjectTogether(group.Key, grads);
        }
    }

    /// <summary>
    /// Call right after <c>optimizer.step()</c> in a hand-written loop: re-projects every guarded A in place
    /// (<c>A = A P</c>). This is what keeps the adapter exactly in its null space under Adam and AdamW.
    /// </summary>
    public void AfterStep()
    {
        ThrowIfDisposed();
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        foreach (var group in _projectionGroups)
        {
            ProjectTogether(group.Key, [.. group.Where(a => !a.IsFrozen).Select(a => (Tensor)a.LoraA)]);
        }
    }

    /// <summary>
    /// Projects the row blocks of the layers that share one projector (q/k/v, gate/up) with one product: for small r,
    /// one (k r) x n times n x d multiplication is markedly cheaper than k separate ones.
    /// </summary>
    private static void ProjectTogether(ProjectorHandle handle, List<Tensor> blocks)
    {
        if (blocks.Count == 0)
        {
            return;
        }

        var first = blocks[0];
        if (blocks.Count == 1 || blocks.Any(b => b.dtype != first.dtype || !b.device.SameAs(first.device)))
        {
            blocks.ForEach(b => handle.For(b).ProjectRowsInPlace(b));
            return;
        }

        var stacked = cat(blocks, 0);
        handle.For(stacked).ProjectRowsInPlace(stacked);
        long offset = 0;
        foreach (var block in blocks)
        {
            block.copy_(stacked.narrow(0, offset, block.shape[0]));
            offset += block.shape[0];
        }
    }

    /// <summary>
    /// Runs <paramref name="forward"/> (one or more forward passes of the model, under no_grad) and throws
    /// <see cref="InvalidOperationException"/> naming every guarded layer the forward never reached. A Linear that had to be
    /// intercepted with a forward hook (<see cref="InterceptionMode.ForwardHook"/>) is reached only when its parent calls
    /// it through <c>call()</c>; a parent that calls <c>forward()</c> bypasses the hook, and this check says so.
    /// </summary>
    public void VerifyInterception(Action forward)
    {
        ThrowIfDisposed();
        ArgumentNullException.ThrowIfNull(forward);
        var before = _adapters.Select(a => a.Invocations).ToList();
        using (no_grad())
        {
            forward();
        }

        var missed = _adapters.Where((a, i) => a.Invocations == before[i]).ToList();
        if (missed.Count > 0)
        {
            throw new InvalidOperationException(
                $"The forward pass never reached the adapters of {string.Join(", ", missed.Select(a => $"'{a.LayerName}'{(a.IsHookMode ? " (forward hook)" : string.Empty)}"))}. " +
                "A layer intercepted with a forward hook runs the adapter only when its parent calls it through call(), not forward(): " +
                "change the parent to call(), declare the field as Module<Tensor, Tensor> so the layer can be replaced, or exclude the layer from the targets.");
        }
    }

    /// <summary>
    /// The safety monitor: for every guarded layer, the relative change of its outputs on the harmful calibration
    /// activations since attach, <c>||dW C_h^(1/2)||_F / ||W C_h^(1/2)||_F</c>, computed from the stored covariance factor
    /// (no forward pass; O(r k (m + n)) per layer). 0 means the harmful outputs are exactly as they were. Available when
    /// the harmful drift is tracked (<see cref="GuardedLoraOptions.TracksHarmfulDrift"/>). Logs the largest change.
    /// </summary>
    /// <exception cref="InvalidOperationException">The drift is not tracked for this model.</exception>
    public HarmfulDriftReport MeasureHarmfulDrift()
    {
        ThrowIfDisposed();
        if (_factors.Count == 0)
        {
            throw new InvalidOperationException(
                "The harmful drift is not tracked for this model: attach with GuardedLoraOptions.TrackHarmfulDrift = true (or a positive drift penalty) " +
                "and harmful calibration data (CalibrationData.RunHarmfulPrompts or HarmfulCovariances).");
        }

        var layers = _adapters.Where(a => a.HarmfulFactor is not null)
            .Select(a => new LayerHarmfulDrift(a.LayerName, a.IsEnabled ? HarmfulDrift.RelativeChange(a) : 0))
            .ToList();
        var report = new HarmfulDriftReport(layers);
        Log.HarmfulDriftMeasured(_logger, report.Max, report.MaxLayer ?? string.Empty, report.RootMeanSquare);
        return report;
    }

    /// <summary>The null-space options of a covariance group: every layer of it must resolve to the same options.</summary>
    private static NullSpaceOptions GroupNullSpace(GuardedLoraOptions options, LayerCovariance group)
    {
        var chosen = group.Layers.Select(options.NullSpaceFor).Distinct().ToList();
        if (chosen.Count > 1)
        {
            throw new ArgumentException(
                $"Layers {string.Join(", ", group.Layers.Select(l => $"'{l}'"))} read the same input and share one projector, but GuardedLoraOptions.NullSpaceOverrides " +
                "gives them different null-space options. Make one override select all of them, or none.", nameof(options));
        }

        return chosen[0];
    }

    /// <summary><c>tr(C) / n</c> in float64.</summary>
    private static double MeanEigenvalue(Tensor covariance)
    {
        using var scope = NewDisposeScope();
        return covariance.diagonal().to_type(ScalarType.Float64).mean().ToDouble();
    }

    /// <summary><c>||W C^(1/2)||_F^2 = tr(W C W^T)</c> in float64.</summary>
    private static double OutputEnergy(Tensor weight, Tensor covariance)
    {
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var w = weight.detach().to(ScalarType.Float64, covariance.device);
        return (w.mm(covariance.to_type(ScalarType.Float64)) * w).sum().ToDouble();
    }

    /// <summary>Turns every adapter off (the model computes its ORIGINAL weights) or back on.</summary>
    public void SetAdaptersEnabled(bool enabled)
    {
        ThrowIfDisposed();
        _adapters.ForEach(a => a.SetEnabled(enabled));
    }

    /// <summary>
    /// Adds <c>s B A</c> into every frozen weight, so the forward runs at plain-Linear cost. Every merged weight is computed
    /// and checked for NaN/Inf before any is written: on failure nothing changes.
    /// </summary>
    public void Merge()
    {
        ThrowIfDisposed();
        if (_adapters.Any(a => a.IsMerged))
        {
            throw new InvalidOperationException("The adapters are already merged.");
        }

        if (_adapters.Any(a => !a.IsEnabled))
        {
            throw new InvalidOperationException("Enable the adapters before merging them.");
        }

        using var scope = NewDisposeScope();
        var merged = _adapters.Select(a => a.MergedWeightOrThrow()).ToList();
        for (var i = 0; i < merged.Count; i++)
        {
            _adapters[i].CommitMerge(merged[i]);
        }
    }

    /// <summary>Subtracts <c>s B A</c> from every frozen weight again.</summary>
    public void Unmerge()
    {
        ThrowIfDisposed();
        if (!_adapters.All(a => a.IsMerged))
        {
            throw new InvalidOperationException("The adapters are not merged.");
        }

        _adapters.ForEach(a => a.Unmerge());
    }

    /// <inheritdoc />
    public void Dispose()
    {
        if (_disposed)
        {
            return;
        }

        _disposed = true;
        _projectors.ForEach(p => p.Dispose());
        _factors.ForEach(f => f.Dispose());
    }

    internal IReadOnlyList<GuardedLoraAdapter> AdapterList => _adapters;

    /// <summary>Test seam: called after each layer's surgery so tests can prove the rollback is complete.</summary>
    internal static Action<string>? CommitFaultForTests { get; set; }

    /// <summary>Frees the adapters of a failed attachment without touching parameters they share with the model.</summary>
    internal static void ReleaseAfterFailure(List<GuardedLoraAdapter> built)
    {
        foreach (var adapter in built)
        {
            adapter.ReleaseAfterFailedAttach(adapter.OwnsWeight);
        }
    }

    private void ThrowIfDisposed() => ObjectDisposedException.ThrowIf(_disposed, this);

    private static void CheckTargets(IReadOnlyList<(string Name, Linear Layer)> targets, int rank)
    {
        foreach (var (name, layer) in targets)
        {
            var max = Math.Min(layer.in_features, layer.out_features);
            if (rank > max)
            {
                throw new ArgumentOutOfRangeException(nameof(rank), rank,
                    $"Layer '{name}' is {layer.out_features} x {layer.in_features}: the adapter rank must be between 1 and {max}. Lower GuardedLoraOptions.Rank or exclude this layer from the targets.");
            }

            if (!TensorChecks.IsFloatingPoint(layer.weight!.dtype))
            {
                throw new ArgumentException($"Layer '{name}': the weight has dtype {layer.weight.dtype}; guarded adapters need floating-point weights.");
            }

            TensorChecks.ThrowIfNonFinite(layer.weight, name, "the weight", "Repair or reload the model's weights before attaching adapters.");
        }
    }

    private static SafetySubspaceOptions CopyWithMethod(SafetySubspaceOptions o, DecompositionMethod method)
    {
        var copy = o.Clone();
        copy.Method = method;
        return copy;
    }

    private static CovarianceSet Covariances(
        string kind,
        CovarianceSet? given,
        Action<ActivationCovarianceCollector>? run,
        Module model,
        string[] names,
        GuardedLoraOptions options,
        ILogger logger,
        IProgress<AttachProgress>? progress,
        List<CovarianceSet> owned,
        CancellationToken cancellationToken)
    {
        CovarianceSet set;
        if (given is not null)
        {
            set = given;
        }
        else if (run is not null)
        {
            progress?.Report(new AttachProgress($"{kind} covariances", 0, 1, null));
            try
            {
                set = ActivationCovarianceCollector.Collect(model, TargetModules.ExactNames(names), run, options.Collection, logger, cancellationToken);
            }
            catch (InvalidOperationException ex)
            {
                var callback = kind == "safety" ? nameof(CalibrationData.RunSafetyPrompts) : nameof(CalibrationData.RunHarmfulPrompts);
                throw new InvalidOperationException($"Collecting the {kind} covariances (CalibrationData.{callback}) failed: {ex.Message}", ex);
            }

            owned.Add(set);
            progress?.Report(new AttachProgress($"{kind} covariances", 1, 1, null));
        }
        else
        {
            var property = kind == "safety" ? "RunSafetyPrompts or SafetyCovariances" : "RunHarmfulPrompts or HarmfulCovariances";
            throw new ArgumentException($"{options.Method} needs the {kind}-prompt covariances: set CalibrationData.{property}.", nameof(CalibrationData));
        }

        var layers = model.named_modules().ToDictionary(m => m.name, m => m.module);
        foreach (var name in names)
        {
            if (!set.TryGet(name, out var covariance))
            {
                throw new ArgumentException($"Layer '{name}': the {kind} covariances have no entry for it. Collect them with the same targets as the adapters.");
            }

            var width = ((Linear)layers[name]).in_features;
            if (covariance.InputWidth != width)
            {
                throw new ArgumentException($"Layer '{name}': the {kind} covariance is {covariance.InputWidth} wide but the layer's input is {width}. It was collected on another model.");
            }
        }

        return set;
    }

    private static LayerInit Initialise(
        string name,
        Linear layer,
        GuardedLoraOptions options,
        int index,
        SafetySubspaceDecomposer? decomposer,
        CovarianceSet? safety,
        ProjectorHandle? projector,
        List<LayerDecomposition> decompositions,
        CancellationToken cancellationToken)
    {
        var weight = layer.weight!;
        if (decomposer is not null)
        {
            var d = decomposer.Decompose(name, weight, safety?[name].Sum, options.Rank, projector?.Projector, cancellationToken);
            decompositions.Add(d);

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

    /// <summary>
    /// Replaces or hooks every planned layer and freezes the base model, recording an undo action for each change. On
    /// any failure or cancellation it runs them and rethrows. Its last statement is the commit point of the attachment.
    /// </summary>
    private static SurgeryUndo Commit(
        Module model,
        GuardedLoraOptions options,
        List<(string Name, Linear Layer, Module Parent, string Child, InterceptionMode Mode)> plans,
        List<GuardedLoraAdapter> adapters,
        Dictionary<string, Tensor> hookResiduals,
        CancellationToken cancellationToken)
    {
        var undo = new SurgeryUndo(model);
        try
        {
            for (var i = 0; i < plans.Count; i++)
            {
                cancellationToken.ThrowIfCancellationRequested();
                var plan = plans[i];
                var adapter = adapters[i];
                if (plan.Mode == InterceptionMode.Replaced)
                {
                    undo.Push(ModuleSurgery.Replace(plan.Parent, plan.Child, plan.Layer, adapter));
                    undo.RecordReplaced(plan.Layer, adapter);
                }
                else
                {
                    if (hookResiduals.TryGetValue(plan.Name, out var residual))
                    {
                        var linear = plan.Layer;
                        var original = linear.weight!.detach().clone().DetachFromDisposeScope();
                        using (no_grad())
                        {
                            linear.weight!.copy_(residual);
                        }

                        // Kept until undone (rollback or Detach); read the weight then, since .to() replaces it.
                        undo.Push(() =>
                        {
                            using (no_grad())
                            {
                                linear.weight!.copy_(original);
                            }

                            original.Dispose();
                        });
                    }

                    undo.Push(ModuleSurgery.RegisterBeside(plan.Parent, plan.Child + HookSuffix, adapter));
                    adapter.AttachHook();
                    undo.Push(adapter.DetachHook);
                }

                CommitFaultForTests?.Invoke(plan.Name);
                foreach (var p in new[] { plan.Layer.weight, plan.Layer.bias })
                {
                    if (p is not null)
                    {
                        p.requires_grad = false;
                    }
                }
            }

            if (options.FreezeBaseModel)
            {
                var trainable = adapters.SelectMany(a => new[] { a.LoraA.Handle, a.LoraB.Handle }).ToHashSet();
                foreach (var (_, parameter) in model.named_parameters())
                {
                    if (!trainable.Contains(parameter.Handle))
                    {
                        parameter.requires_grad = false;
                    }
                }
            }

            // The commit point: a cancellation up to here is honoured, and rolled back.
            cancellationToken.ThrowIfCancellationRequested();
        }
        catch
        {
            undo.Undo(model);
            throw;
        }

        return undo;
    }
}
