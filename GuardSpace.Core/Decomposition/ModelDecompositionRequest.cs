using GuardSpace.Collection;
using GuardSpace.Targeting;

namespace GuardSpace.Decomposition;

/// <summary>What <see cref="SafetySubspaceDecomposerExtensions.DecomposeModel"/> decomposes.</summary>
/// <param name="Targets">The layers to decompose.</param>
/// <param name="Rank">The adapter rank r.</param>
/// <param name="SafetyCovariances">Safety-prompt covariances, keyed by layer (required by the covariance methods; null for PiSSA).</param>
public sealed record ModelDecompositionRequest(TargetModules Targets, int Rank, CovarianceSet? SafetyCovariances = null);
