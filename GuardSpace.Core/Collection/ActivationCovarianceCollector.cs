using System.Runtime.CompilerServices;
using GuardSpace.Diagnostics;
using GuardSpace.Targeting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using Module = TorchSharp.torch.nn.Module;

namespace GuardSpace.Collection;

/// <summary>
/// Collects the activation covariances <c>sum x x^T</c> of the inputs of target Linear layers through forward hooks.
/// Create it, run the model on calibration prompts (through <c>model.call(...)</c>; set a padding mask with
/// <see cref="SetTokenMask"/>), then call <see cref="ToCovarianceSet"/>. Disposing it removes every hook.
/// </summary>
/// <remarks>
/// TorchSharp runs hooks only when a parent invokes its child through <c>call()</c>; a layer whose parent calls
/// <c>forward()</c> never fires, which <see cref="ToCovarianceSet"/> reports. Layers that receive the same input tensor
/// object in a forward pass (q/k/v; gate/up) share one covariance when
/// <see cref="CovarianceCollectionOptions.ShareCovarianceForSharedInputs"/> is set. Not thread-safe: run one forward
/// pass at a time. If a hook throws (a mask that does not fit, non-finite activations), discard the collector.
/// While it lives, the collector keeps one scratch buffer as large as the largest layer input it has converted, masked
/// or scaled (tokens x in_features in the accumulation dtype), reused by every layer and forward pass instead of a fresh
/// copy each time; disposing it frees the buffer.
/// </remarks>
public sealed class ActivationCovarianceCollector : IDisposable
{
    private readonly CovarianceCollectionOptions options;
    private readonly ILogger logger;
    private readonly IReadOnlyList<(string Name, Linear Layer)> layers;
    private readonly Dictionary<string, int> layerIndex = new(StringComparer.Ordinal);
    private readonly List<Action> hookRemovers = [];
    private readonly Dictionary<string, CovarianceAccumulator> groupOf = new(StringComparer.Ordinal);
    private readonly List<CovarianceAccumulator> groups = [];
    private readonly ConditionalWeakTable<Tensor, InputObservation> observations = new();
    private readonly ActivationScratch scratch = new();
    private Tensor? tokenMask;
    private bool disposed;

    /// <summary>
    /// Hooks every Linear layer of <paramref name="model"/> that <paramref name="targets"/> selects
    /// (see <see cref="LinearLayerSelector.Select"/>, which throws <see cref="ArgumentException"/> listing the model's
    /// Linear layers when nothing matches).
    /// </summary>
    /// <param name="model">The model; it is not modified apart from the hooks. Put it in eval mode first.</param>
    /// <param name="targets">The layers to collect for.</param>
    /// <param name="options">Collection options; null for the defaults. Validated and copied.</param>
    /// <param name="logger">Receives warnings (training mode, too few tokens) and progress; null for none.</param>
    public ActivationCovarianceCollector(Module model, TargetModules targets, CovarianceCollectionOptions? options = null, ILogger? logger = null)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(targets);
        this.options = (options ?? new CovarianceCollectionOptions()).Clone();
        this.options.Validate();
        this.logger = logger ?? NullLogger.Instance;
        layers = LinearLayerSelector.Select(model, targets);
        for (var i = 0; i < layers.Count; i++)
        {
            layerIndex[layers[i].Name] = i;
        }

        if (model.training)
        {
            Log.ModelInTrainingMode(this.logger, model.GetType().Name);
        }

        try
        {
            foreach (var (name, layer) in layers)
            {
                // Before the layer runs: libtorch's own dtype error would name neither the layer nor the fix.
                var check = layer.register_forward_pre_hook((_, input) =>
                {
                    ThrowIfDtypeMismatch(name, layer, input);
                    return null!;
                });
                hookRemovers.Add(check.remove);
                var remover = layer.register_forward_hook((_, input, _) =>
                {
                    OnForward(name, input);
                    return null!;
                });
                hookRemovers.Add(remover.remove);
            }
        }
        catch
        {
            RemoveHooks();
            throw;
        }

        Log.CollectionStarted(this.logger, layers.Count, this.options.Scaling.ToString(), this.options.AccumulationType.ToString(), this.options.ShareCovarianceForSharedInputs);
    }

    /// <summary>The hooked layers (dotted module paths), in module order.</summary>
    public IReadOnlyList<string> HookedLayers => layers.Select(l => l.Name).ToList();

    /// <summary>Unmasked tokens collected so far: the largest token count over all covariances.</summary>
    public long TokenCount => groups.Count == 0 ? 0 : groups.Max(g => g.TokenCount);

    /// <summary>
    /// Sets the token mask for the following forward calls, until changed: shape [batch, seq] (the leading shape of
    /// the layers' inputs), bool or 0/1 values; true/1 marks a token to collect. Masked-out tokens count nowhere: not in
    /// the sums, the token counts nor the per-sample maxima. Null collects every token. The mask is copied.
    /// </summary>
    /// <exception cref="ArgumentException">The mask holds values other than 0 and 1, or is a scalar.</exception>
    public void SetTokenMask(Tensor? mask)
    {
        ThrowIfDisposed();
        Tensor? copy = null;
        if (mask is not null)
        {
            if (mask.dim() == 0)
            {
                throw new ArgumentException("The token mask must have shape [batch, seq] (or the layers' input shape without its last dimension), not be a scalar.", nameof(mask));
            }

            using var noGrad = no_grad();
            using var scope = NewDisposeScope();
            var m = mask.detach();
            if (m.dtype != ScalarType.Bool)
            {
                if (!m.eq(0).logical_or(m.eq(1)).all().item<bool>())
                {
                    throw new ArgumentException($"The token mask ({m.dtype}) must hold only 0 and 1 (or be a bool tensor).", nameof(mask));
                }

                m = m.ne(0);
            }

            copy = m.clone().DetachFromDisposeScope();
        }

        tokenMask?.Dispose();
        tokenMask = copy;
    }

    /// <summary>
    /// Returns the covariances collected so far as an independent <see cref="CovarianceSet"/>: the sums are CLONED, so
    /// the caller owns (and must dispose) the set, and the collector may keep collecting or be disposed.
    /// Logs a warning for each covariance with fewer tokens than its input width.
    /// </summary>
    /// <exception cref="InvalidOperationException">
    /// A hooked layer never fired (its parent probably calls <c>.forward()</c> instead of <c>.call()</c>), no tokens were
    /// collected, or the last forward pass fed only part of a group of layers that share an input.
    /// </exception>
    public CovarianceSet ToCovarianceSet()
    {
        ThrowIfDisposed();
        return BuildSet(transfer: false);
    }

    /// <summary>
    /// Runs <paramref name="run"/>'s batch runner for every batch under <c>no_grad</c> with a new collector, checks
    /// <paramref name="cancellationToken"/> before each batch, reports <see cref="CalibrationRun{TBatch}.Progress"/> after
    /// each, disposes the collector and returns the set (the caller owns it). The runner must forward the model with
    /// <c>.call()</c> and may set a mask with <see cref="SetTokenMask"/>.
    /// </summary>
    public static CovarianceSet Collect<TBatch>(
        Module model,
        TargetModules targets,
        CalibrationRun<TBatch> run,
        CovarianceCollectionOptions? options = null,
        ILogger? logger = null,
        CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(run);
        var batches = run.Batches ?? throw new ArgumentException("CalibrationRun.Batches is null.", nameof(run));
        var runBatch = run.RunBatch ?? throw new ArgumentException("CalibrationRun.RunBatch is null.", nameof(run));
        int? batchCount = batches.TryGetNonEnumeratedCount(out var count) ? count : null;
        using var collector = new ActivationCovarianceCollector(model, targets, options, logger);
        using (no_grad())
        {
            var done = 0;
            foreach (var batch in batches)
            {
                cancellationToken.ThrowIfCancellationRequested();
                runBatch(batch, collector);
                done++;
                var tokens = collector.TokenCount;
                Log.BatchCollected(collector.logger, done, tokens);
                run.Progress?.Report(new CollectionProgress(done, batchCount, tokens));
            }
        }

        cancellationToken.ThrowIfCancellationRequested();
        return collector.BuildSet(transfer: true);
    }

    /// <summary>
    /// Runs <paramref name="run"/> once under <c>no_grad</c> with a new collector (the runner forwards every calibration
    /// batch itself), disposes the collector and returns the set (the caller owns it).
    /// </summary>
    public static CovarianceSet Collect(
        Module model,
        TargetModules targets,
        Action<ActivationCovarianceCollector> run,
        CovarianceCollectionOptions? options = null,
        ILogger? logger = null,
        CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(run);
        cancellationToken.ThrowIfCancellationRequested();
        return Collect(model, targets, new CalibrationRun<Action<ActivationCovarianceCollector>>([run], (r, collector) => r(collector)), options, logger, cancellationToken);
    }

    /// <summary>Removes every hook and frees the running sums and the mask. Forward passes afterwards collect nothing.</summary>
    public void Dispose()
    {
        if (disposed)
        {
            return;
        }

        disposed = true;
        RemoveHooks();
        foreach (var group in groups)
        {
            group.Dispose();
        }

        groups.Clear();
        groupOf.Clear();
        tokenMask?.Dispose();
        tokenMask = null;
        scratch.Dispose();
    }

    private void OnForward(string layer, Tensor input)
    {
        if (disposed)
        {
            return;
        }

        if (!options.ShareCovarianceForSharedInputs)
        {
            if (!groupOf.TryGetValue(layer, out var own))
            {
                own = NewGroup(layer);
            }

            own.Add(layer, input, tokenMask, options.Scaling, options.AccumulationType, scratch);
            return;
        }

        if (observations.TryGetValue(input, out var observation) && !observation.Seen.Contains(layer))
        {
            JoinObservation(layer, observation);
            return;
        }

        // A new input tensor for this layer: its group accumulates it once.
        var isNew = !groupOf.TryGetValue(layer, out var group);
        if (!isNew && group!.Current is { } current && current.Seen.Count < group.Members.Count)
        {
            throw new InvalidOperationException(
                $"Inconsistent shared inputs: layers [{group.Describe()}] received one input tensor together in an earlier forward pass, but now layer '{layer}' " +
                $"received a different input tensor than [{string.Join(", ", current.Seen)}]. Layers share a covariance only if they always receive " +
                "the same tensor; set ShareCovarianceForSharedInputs = false for models that feed them differently.");
        }

        group = isNew ? NewGroup(layer) : group!;
        group.Add(layer, input, tokenMask, options.Scaling, options.AccumulationType, scratch);
        var fresh = new InputObservation(group, layer);
        group.Current = fresh;
        group.ObservationCount++;
        observations.AddOrUpdate(input, fresh);
    }

    private static void ThrowIfDtypeMismatch(string name, Linear layer, Tensor input)
    {
        var weightType = layer.weight!.dtype;
        if (input.dtype != weightType)
        {
            throw new ArgumentException(
                $"Layer '{name}': the calibration input is {input.dtype} but the layer's weight is {weightType}, so the layer cannot run on it. " +
                $"Feed the calibration prompts in the model's dtype (for example inputs.to(ScalarType.{weightType})), or convert the model first.");
        }
    }

    private void JoinObservation(string layer, InputObservation observation)
    {
        var group = observation.Group;
        if (groupOf.TryGetValue(layer, out var own))
        {
            if (!ReferenceEquals(own, group))
            {
                throw new InvalidOperationException(
                    $"Inconsistent shared inputs: layer '{layer}' received the same input tensor as [{string.Join(", ", observation.Seen)}], " +
                    $"but in earlier forward passes it received its input with [{own.Describe()}] instead. " +
                    "Set ShareCovarianceForSharedInputs = false for models whose layers share inputs differently from pass to pass.");
            }

            observation.Seen.Add(layer);
            return;
        }

        if (group.ObservationCount > 1 || !ReferenceEquals(group.Current, observation))
        {
            throw new InvalidOperationException(
                $"Inconsistent shared inputs: layer '{layer}' fired for the first time, on the same input tensor as [{group.Describe()}], " +
                "which had already collected earlier inputs without it. Set ShareCovarianceForSharedInputs = false for such models.");
        }

        group.Members.Add((layer, layerIndex[layer]));
        groupOf[layer] = group;
        observation.Seen.Add(layer);
        Log.SharedInputDetected(logger, group.Members[0].Name, group.Describe());
    }

    private CovarianceAccumulator NewGroup(string layer)
    {
        var group = new CovarianceAccumulator(layer, layerIndex[layer]);
        groupOf[layer] = group;
        groups.Add(group);
        return group;
    }

    private CovarianceSet BuildSet(bool transfer)
    {
        var result = CovarianceSetBuilder.Build(layers.Select(l => l.Name).ToList(), groups, transfer, logger);
        Log.CollectionFinished(logger, result.Count, layers.Count, TokenCount);
        return new CovarianceSet(result, options.Scaling);
    }

    private void RemoveHooks()
    {
        foreach (var remove in hookRemovers)
        {
            remove();
        }

        hookRemovers.Clear();
    }

    private void ThrowIfDisposed() => ObjectDisposedException.ThrowIf(disposed, this);
}
