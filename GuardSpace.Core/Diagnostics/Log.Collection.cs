using Microsoft.Extensions.Logging;

namespace GuardSpace.Diagnostics;

/// <summary>Activation covariance collection messages, event ids 100-199.</summary>
internal static partial class Log
{
    [LoggerMessage(EventId = 100, Level = LogLevel.Information, Message = "Collecting activation covariances on {LayerCount} Linear layers (scaling {Scaling}, accumulation {AccumulationType}, shared inputs share a covariance: {Share})")]
    public static partial void CollectionStarted(ILogger logger, int layerCount, string scaling, string accumulationType, bool share);

    [LoggerMessage(EventId = 101, Level = LogLevel.Warning, Message = "Covariance '{Key}' (layers {Layers}) holds {TokenCount} tokens for input width {InputWidth}: it is singular and damping will dominate. Collect more calibration tokens if this layer matters.")]
    public static partial void FewerTokensThanWidth(ILogger logger, string key, string layers, long tokenCount, long inputWidth);

    [LoggerMessage(EventId = 102, Level = LogLevel.Warning, Message = "The model {ModelType} is in training mode: dropout and similar layers will perturb the collected activations. Call model.eval() before collecting.")]
    public static partial void ModelInTrainingMode(ILogger logger, string modelType);

    [LoggerMessage(EventId = 103, Level = LogLevel.Information, Message = "Collected {CovarianceCount} covariances for {LayerCount} layers from {TokenCount} tokens")]
    public static partial void CollectionFinished(ILogger logger, int covarianceCount, int layerCount, long tokenCount);

    [LoggerMessage(EventId = 104, Level = LogLevel.Debug, Message = "Layers {Layers} receive the same input tensor and share one covariance '{Key}'")]
    public static partial void SharedInputDetected(ILogger logger, string key, string layers);

    [LoggerMessage(EventId = 105, Level = LogLevel.Debug, Message = "Calibration batch {BatchesDone} done; {TokenCount} tokens so far")]
    public static partial void BatchCollected(ILogger logger, int batchesDone, long tokenCount);
}
