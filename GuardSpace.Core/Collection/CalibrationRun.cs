namespace GuardSpace.Collection;

/// <summary>What <see cref="ActivationCovarianceCollector.Collect{TBatch}"/> runs: the calibration batches and how to forward one.</summary>
/// <typeparam name="TBatch">Whatever one batch is (token ids, a tensor, a record of ids and mask).</typeparam>
/// <param name="Batches">The calibration batches, enumerated once.</param>
/// <param name="RunBatch">Forwards one batch through the model with <c>.call()</c>; may set a token mask on the collector first.</param>
public sealed record CalibrationRun<TBatch>(IEnumerable<TBatch> Batches, Action<TBatch, ActivationCovarianceCollector> RunBatch)
{
    /// <summary>Reported after each batch (batches done, total when known, tokens so far); null for none.</summary>
    public IProgress<CollectionProgress>? Progress { get; init; }
}
