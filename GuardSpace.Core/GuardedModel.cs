using GuardSpace.Adapters;
using GuardSpace.Attach;
using GuardSpace.Diagnostics;
using GuardSpace.Projection;
using GuardSpace.Serialization;
using GuardSpace.Training;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using TorchSharp.Modules;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace GuardSpace;

/// <summary>
/// A model with guarded LoRA adapters attached: the handle returned by <see cref="Attach"/> and <see cref="Load"/>. It lists
/// the adapters, their trainable parameters, the shared projectors and per-layer reports, and runs the optimizer hook that
/// keeps every guarded adapter inside its null space (<see cref="WrapOptimizer"/>, or <see cref="AfterBackward"/> and
/// <see cref="AfterStep"/> in a hand-written loop). Disposing it frees the projectors; the model keeps its adapters.
/// This class is the front door: the attach pipeline lives in <c>Attach/</c>, the hook in <c>Training/</c>, and saving,
/// loading and export in <c>Serialization/</c>.
/// </summary>
public sealed class GuardedModel : IDisposable
{
    private readonly AttachedAdapters _state;
    private readonly GradientGuard _guard;

    private GuardedModel(AttachedAdapters state)
    {
        _state = state;
        _guard = new GradientGuard(state);
        Adapters = state.List.ToDictionary(a => a.LayerName, StringComparer.Ordinal);
        Projectors = state.Projectors.ToDictionary(p => p.Projector.Name, p => p.Projector, StringComparer.Ordinal);
    }

    /// <summary>The suffix of the adapter module registered beside a Linear that is intercepted with a forward hook.</summary>
    public const string HookSuffix = AdapterAssembly.HookSuffix;

    /// <summary>The model the adapters live in.</summary>
    public Module Model => _state.Model;

    /// <summary>The options the adapters were attached with.</summary>
    public GuardedLoraOptions Options => _state.Options;

    /// <summary>The adapters, keyed by the dotted path of the layer each one guards.</summary>
    public IReadOnlyDictionary<string, GuardedLoraAdapter> Adapters { get; }

    /// <summary>What was done to each layer, in module order.</summary>
    public IReadOnlyList<LayerAttachReport> Layers => _state.Layers;

    /// <summary>The null-space projectors, keyed by covariance group (one per group of layers that read the same input).</summary>
    public IReadOnlyDictionary<string, INullSpaceProjector> Projectors { get; }

    /// <summary>True while the adapters are merged into the frozen weights (<see cref="Merge"/>).</summary>
    public bool IsMerged => _state.IsMerged;

    /// <summary>The adapters in module order (tests and benchmarks).</summary>
    internal IReadOnlyList<GuardedLoraAdapter> AdapterList => _state.List;

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
    /// The commit point is the end of the surgery stage, before the final <see cref="AttachStage.Surgery"/> report: a
    /// cancellation after it is ignored and Attach returns the guarded model.
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
        return AttachWith(new AttachContext(model, options.Clone(), LoggerFrom(loggerFactory), progress, cancellationToken), calibration);
    }

    /// <summary>Attach with a prepared context (tests inject a fault after each layer's surgery through it).</summary>
    internal static GuardedModel AttachWith(AttachContext context, CalibrationData? calibration) => new(AttachPipeline.Run(context, calibration));

    /// <summary>
    /// Attaches a saved adapter to <paramref name="model"/>, which must hold the ORIGINAL weights the adapter was made
    /// from (the frozen residuals are recomputed as <c>W - s B0 A0</c>). Before touching the model it checks, and reports
    /// in one exception each: the config's values; every tensor against its checksum; every name and shape against the
    /// model; that the factors are finite, every projector basis is orthonormal and every guarded A satisfies A = A P;
    /// and each layer's weight against the fingerprint of the original one. Like <see cref="Attach"/>, it changes nothing
    /// on failure or cancellation.
    /// </summary>
    /// <param name="model">The model with the original weights (in any dtype, on any device).</param>
    /// <param name="directory">The folder <see cref="Save"/> wrote.</param>
    /// <param name="loggerFactory">Receives the load report and warnings (an old format version, an allowed weight mismatch).</param>
    /// <param name="options">What to tolerate; defaults when null (nothing).</param>
    /// <param name="progress">Stage-by-stage progress: <see cref="AttachStage.Reading"/>, <see cref="AttachStage.Verifying"/>, then Attach's last two stages.</param>
    /// <param name="cancellationToken">Checked between stages and layers up to the end of the surgery, as in <see cref="Attach"/>.</param>
    /// <returns>The handle of the loaded adapters, ready to train on.</returns>
    /// <exception cref="InvalidDataException">A file is missing, truncated or corrupted, or the config holds invalid values (the message names the file and every field).</exception>
    /// <exception cref="ArgumentException">The adapter does not fit the model, or was made from other weights (the message lists every mismatch).</exception>
    /// <exception cref="InvalidOperationException">The model already holds GuardSpace adapters.</exception>
    public static GuardedModel Load(
        Module model,
        string directory,
        ILoggerFactory? loggerFactory = null,
        AdapterLoadOptions? options = null,
        IProgress<AttachProgress>? progress = null,
        CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentException.ThrowIfNullOrWhiteSpace(directory);
        var request = new AdapterLoader.Request(model, directory, LoggerFrom(loggerFactory), options ?? new AdapterLoadOptions(), progress, cancellationToken);
        return new GuardedModel(AdapterLoader.Load(request));
    }

    /// <summary>
    /// Saves the adapter state to <paramref name="directory"/>: <see cref="AdapterFiles.StateFile"/> (A, B, the initial
    /// A0 and B0, and every projector basis) and <see cref="AdapterFiles.ConfigFile"/> (method, rank, targets,
    /// thresholds, library version, whether the base weights were changed, a checksum of every tensor and a fingerprint
    /// of every guarded layer's original weight). Both files are written in full to temporary files first and then
    /// moved in together: a failure leaves the previous pair as it was. Any <see cref="INullSpaceProjector"/> is saved
    /// through <see cref="INullSpaceProjector.ExportBasis"/>.
    /// </summary>
    public void Save(string directory) => SaveWith(directory, beforeReplace: null);

    /// <summary>Save with a callback before each file is replaced (tests inject faults through it).</summary>
    internal void SaveWith(string directory, Action<string>? beforeReplace)
    {
        ThrowIfDisposed();
        ArgumentException.ThrowIfNullOrWhiteSpace(directory);
        AdapterSaver.Save(_state, directory, beforeReplace);
    }

    /// <summary>
    /// Exports the fine-tune as a plain LoRA delta relative to the ORIGINAL weights, in PEFT's layout, so any LoRA runtime
    /// can apply it to the original checkpoint. Per layer, <c>W_final - W = B_exp A_exp</c> with
    /// <c>[s B, -s B0] [A; A0]</c> (rank 2r) where the initial factors are non-zero (GuardSpace, PiSSA, CorDA), <c>(s B) A</c>
    /// (rank r) where B0 = 0 (LoRA, NullSpace-LoRA), and a zero B at rank r for a layer that did not change (a frozen one).
    /// Writes <see cref="AdapterFiles.PeftWeightsFile"/> with keys <c>base_model.model.&lt;path&gt;.lora_A.weight</c> /
    /// <c>.lora_B.weight</c> and <see cref="AdapterFiles.PeftConfigFile"/>: <c>r</c> is the most common layer rank,
    /// <c>rank_pattern</c> and <c>alpha_pattern</c> list the layers of another rank (keyed so that PEFT 0.6 and later all
    /// match them; see docs/adapter-format.md), and every layer's alpha equals its rank, so PEFT's scaling
    /// <c>lora_alpha / r</c> is 1 everywhere. Files are replaced atomically.
    /// </summary>
    /// <param name="directory">The folder to write to (created if needed).</param>
    /// <param name="options"><c>base_model_name_or_path</c> and <c>task_type</c>; null for neither.</param>
    public void ExportPeft(string directory, PeftExportOptions? options = null)
    {
        ThrowIfDisposed();
        ArgumentException.ThrowIfNullOrWhiteSpace(directory);
        PeftExporter.Export(_state, directory, options);
    }

    /// <summary>The adapter factors that train (A and B of every adapter that is not frozen). Look them up again after <c>.to()</c>.</summary>
    public IReadOnlyList<Parameter> TrainableParameters()
    {
        ThrowIfDisposed();
        return _state.TrainableParameters();
    }

    /// <summary>
    /// Wraps <paramref name="inner"/> so that its <c>step()</c> projects the gradients of A, runs the inner step, and
    /// re-projects A in place. Build <paramref name="inner"/> on <see cref="TrainableParameters"/> after any <c>.to()</c>.
    /// </summary>
    /// <exception cref="ArgumentException">The inner optimizer does not hold the guarded A factors (built before a <c>.to()</c>, for example).</exception>
    public GuardedOptimizer WrapOptimizer(optim.Optimizer inner)
    {
        ThrowIfDisposed();
        return new GuardedOptimizer(inner, _guard);
    }

    /// <summary>
    /// Call after <c>backward()</c> and before <c>optimizer.step()</c> in a hand-written loop: replaces the gradient of every
    /// guarded A by <c>grad(A) P</c>, in place, on the adapter's device.
    /// </summary>
    public void AfterBackward()
    {
        ThrowIfDisposed();
        _guard.AfterBackward();
    }

    /// <summary>
    /// Call right after <c>optimizer.step()</c> in a hand-written loop: re-projects every guarded A in place
    /// (<c>A = A P</c>). This is what keeps the adapter exactly in its null space under Adam and AdamW.
    /// </summary>
    public void AfterStep()
    {
        ThrowIfDisposed();
        _guard.AfterStep();
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
        InterceptionCheck.Verify(_state.List, forward);
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
        return HarmfulDriftMonitor.Measure(_state);
    }

    /// <summary>Turns every adapter off (the model computes its ORIGINAL weights) or back on.</summary>
    public void SetAdaptersEnabled(bool enabled)
    {
        ThrowIfDisposed();
        _state.SetEnabled(enabled);
    }

    /// <summary>
    /// Adds <c>s B A</c> into every frozen weight, so the forward runs at plain-Linear cost. Every merged weight is computed
    /// and checked for NaN/Inf before any is written: on failure nothing changes.
    /// </summary>
    public void Merge()
    {
        ThrowIfDisposed();
        _state.Merge();
    }

    /// <summary>Subtracts <c>s B A</c> from every frozen weight again.</summary>
    public void Unmerge()
    {
        ThrowIfDisposed();
        _state.Unmerge();
    }

    /// <summary>
    /// Removes every adapter and gives the model back exactly as it was before <see cref="Attach"/> or <see cref="Load"/>
    /// (PEFT's <c>unload()</c>): the original <see cref="TorchSharp.Modules.Linear"/> objects return to their parents, hooks and
    /// <c>_guard</c> modules go, weights that hold a residual get their original values back bit for bit (merged or not),
    /// and every <c>requires_grad</c> flag is restored. The fine-tune is discarded: <see cref="Save"/> or
    /// <see cref="Merge"/> first to keep it. After a <c>.to()</c> the layers come back on the model's new device and dtype.
    /// Disposes this handle and the adapters' tensors; optimizers built on <see cref="TrainableParameters"/> must not step again.
    /// </summary>
    public void Detach()
    {
        ThrowIfDisposed();
        AdapterRemoval.Detach(_state);
    }

    /// <inheritdoc />
    public void Dispose() => _state.Dispose();

    private void ThrowIfDisposed() => ObjectDisposedException.ThrowIf(_state.IsDisposed, this);

    private static ILogger LoggerFrom(ILoggerFactory? factory) => factory?.CreateLogger("GuardSpace") ?? NullLogger.Instance;
}
