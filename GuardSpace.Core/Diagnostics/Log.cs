using Microsoft.Extensions.Logging;

namespace GuardSpace.Diagnostics;

/// <summary>
/// Source-generated log messages, all in this one file: the LoggerMessage generator emits a class split over several
/// partial files in a nondeterministic order (dotnet/runtime#119587), which made builds differ byte for byte.
/// Event ids by area: 1xx collection, 2xx decomposition, 3xx projection, 4xx adapters, 5xx training, 6xx serialization.
/// Prompt text is never logged.
/// </summary>
internal static partial class Log
{
    // Adapters
    [LoggerMessage(EventId = 400, Level = LogLevel.Information, Message = "Attached {Count} {Method} adapters ({Frozen} frozen for lack of a null space), {Trainable} trainable parameters")]
    public static partial void Attached(ILogger logger, string method, int count, int frozen, long trainable);

    [LoggerMessage(EventId = 401, Level = LogLevel.Information, Message = "Loaded {Count} adapters from '{Directory}' (format version {Version}; checksums, bases, A = A P and base weights verified)")]
    public static partial void Loaded(ILogger logger, int count, string directory, int version);

    [LoggerMessage(EventId = 402, Level = LogLevel.Warning, Message = "'{Path}' has format version {Version}, which holds no checksums and no base-weight fingerprints: only its structure, finiteness, bases and A = A P were checked. Save the adapter again to upgrade it.")]
    public static partial void LoadedWithoutChecksums(ILogger logger, string path, int version);

    [LoggerMessage(EventId = 403, Level = LogLevel.Warning, Message = "AllowBaseWeightMismatch: loading onto weights that are not the adapter's original ones for layer(s) {Layers}; the loaded model will not compute what the saved one did.")]
    public static partial void BaseWeightMismatchAllowed(ILogger logger, string layers);

    [LoggerMessage(EventId = 404, Level = LogLevel.Information, Message = "Detached {Count} adapters: the model holds its original layers again")]
    public static partial void Detached(ILogger logger, int count);

    // Collection
    [LoggerMessage(EventId = 100, Level = LogLevel.Information, Message = "Collecting activation covariances on {LayerCount} Linear layers (scaling {Scaling}, accumulation {AccumulationType}, shared inputs share a covariance: {Share})")]
    public static partial void CollectionStarted(ILogger logger, int layerCount, string scaling, string accumulationType, bool share);

    [LoggerMessage(EventId = 101, Level = LogLevel.Warning, Message = "Covariance '{Key}' (layers {Layers}) holds {TokenCount} tokens for input width {InputWidth}, so it is singular. As a safety covariance its damping will dominate (collect more tokens); as a harmful covariance this is expected and leaves an exact null space.")]
    public static partial void FewerTokensThanWidth(ILogger logger, string key, string layers, long tokenCount, long inputWidth);

    [LoggerMessage(EventId = 102, Level = LogLevel.Warning, Message = "The model {ModelType} is in training mode: dropout and similar layers will perturb the collected activations. Call model.eval() before collecting.")]
    public static partial void ModelInTrainingMode(ILogger logger, string modelType);

    [LoggerMessage(EventId = 103, Level = LogLevel.Information, Message = "Collected {CovarianceCount} covariances for {LayerCount} layers from {TokenCount} tokens")]
    public static partial void CollectionFinished(ILogger logger, int covarianceCount, int layerCount, long tokenCount);

    [LoggerMessage(EventId = 104, Level = LogLevel.Debug, Message = "Layers {Layers} receive the same input tensor and share one covariance '{Key}'")]
    public static partial void SharedInputDetected(ILogger logger, string key, string layers);

    [LoggerMessage(EventId = 105, Level = LogLevel.Debug, Message = "Calibration batch {BatchesDone} done; {TokenCount} tokens so far")]
    public static partial void BatchCollected(ILogger logger, int batchesDone, long tokenCount);

    // Decomposition
    [LoggerMessage(EventId = 200, Level = LogLevel.Debug, Message = "Decomposed '{Layer}' ({Method}, r = {Rank}, solver {Solver}): {Spectrum}")]
    public static partial void LayerDecomposed(ILogger logger, string layer, string method, int rank, string solver, SpectrumSummary spectrum);

    [LoggerMessage(EventId = 201, Level = LogLevel.Information, Message = "Layer '{Layer}': damping raised to l = {Damping:G3} after {Doublings} doublings to make the safety covariance well conditioned")]
    public static partial void DampingIncreased(ILogger logger, string layer, double damping, int doublings);

    [LoggerMessage(EventId = 202, Level = LogLevel.Information, Message = "Layer '{Layer}': the iterative solver fell back to the full SVD after {Iterations} iterations: {Reason}")]
    public static partial void IterativeSolverFellBack(ILogger logger, string layer, string reason, int iterations);

    // Projection
    [LoggerMessage(EventId = 300, Level = LogLevel.Debug, Message = "Null space of '{Layer}': {NullDimension} of {Width} directions ({Threshold}, protected energy {ProtectedEnergy:P4})")]
    public static partial void NullSpaceFitted(ILogger logger, string layer, int nullDimension, int width, ThresholdSummary threshold, double protectedEnergy);

    [LoggerMessage(EventId = 301, Level = LogLevel.Warning, Message = "No null space among the {Width} input directions of layer(s) {Layers}: their adapters are frozen (the projector is zero). Use fewer harmful calibration tokens, another threshold rule, or EmptyNullSpacePolicy.FallBackToEnergy.")]
    public static partial void NullSpaceEmptyFrozen(ILogger logger, string layers, int width);

    [LoggerMessage(EventId = 302, Level = LogLevel.Information, Message = "Layer(s) {Layers} have too small a null space under the requested rule ({Before} directions); fell back to the energy rule ({EnergyFraction:P2} of the trace protected), leaving {NullDimension} free directions.")]
    public static partial void NullSpaceFellBack(ILogger logger, string layers, int before, int nullDimension, double energyFraction);

    // Training
    [LoggerMessage(EventId = 500, Level = LogLevel.Information, Message = "Harmful drift: largest relative output change {Max:G3} at '{Layer}', root mean square {Rms:G3} over the guarded layers")]
    public static partial void HarmfulDriftMeasured(ILogger logger, double max, string layer, double rms);

    [LoggerMessage(EventId = 510, Level = LogLevel.Warning, Message = "The refusal constraint has been violated for {Evaluations} evaluations in a row (step {Step}): validation refusal loss {Loss:G4} above its target {Target:G4} with multiplier {Multiplier:G3}. The task pulls harder than the multiplier answers: raise RefusalConstraintOptions.IntegralGain or MaxMultiplier, lower the learning rate, or screen the training data.")]
    public static partial void RefusalConstraintViolated(ILogger logger, int evaluations, int step, double loss, double target, double multiplier);

    [LoggerMessage(EventId = 511, Level = LogLevel.Debug, Message = "Refusal constraint at step {Step}: validation loss {Loss:G4}, target {Target:G4}, multiplier {Multiplier:G3}")]
    public static partial void RefusalConstraintEvaluated(ILogger logger, int step, double loss, double target, double multiplier);

    [LoggerMessage(EventId = 520, Level = LogLevel.Information, Message = "Poison screen calibrated on {HarmfulCount} harmful and {BenignCount} benign prompts: threshold {Threshold:G4}, misses {MissRate:P1} of the harmful, flags {FalseFlagRate:P1} of the benign")]
    public static partial void ScreenCalibrated(ILogger logger, double threshold, int harmfulCount, int benignCount, double missRate, double falseFlagRate);

    [LoggerMessage(EventId = 521, Level = LogLevel.Warning, Message = "The aligned model hardly separates the harmful from the benign calibration prompts (misses {MissRate:P1} of the harmful, flags {FalseFlagRate:P1} of the benign): the screen will let poison through or drop benign data. Check the scorer, or calibrate on prompts closer to the training data.")]
    public static partial void ScreenSeparatesPoorly(ILogger logger, double missRate, double falseFlagRate);

    [LoggerMessage(EventId = 522, Level = LogLevel.Information, Message = "Poison screen flagged {Flagged} of {Total} training examples (policy {Policy})")]
    public static partial void ScreenApplied(ILogger logger, int flagged, int total, string policy);

    // Serialization
    [LoggerMessage(EventId = 600, Level = LogLevel.Debug, Message = "Wrote {TensorCount} tensors ({ByteCount} data bytes) to safetensors file '{Path}'")]
    public static partial void SafetensorsWritten(ILogger logger, int tensorCount, long byteCount, string path);

    [LoggerMessage(EventId = 601, Level = LogLevel.Debug, Message = "Read {TensorCount} tensors ({ByteCount} data bytes) from safetensors file '{Path}'")]
    public static partial void SafetensorsRead(ILogger logger, int tensorCount, long byteCount, string path);
}
