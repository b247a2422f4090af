namespace GuardSpace.Collection;

/// <summary>Progress of a covariance collection, reported once per calibration batch.</summary>
/// <param name="BatchesDone">Batches run so far.</param>
/// <param name="BatchCount">Total number of batches when the sequence's size is known without enumerating it; otherwise null.</param>
/// <param name="Tokens">Unmasked tokens collected so far (the largest token count over all covariances).</param>
public readonly record struct CollectionProgress(int BatchesDone, int? BatchCount, long Tokens);
