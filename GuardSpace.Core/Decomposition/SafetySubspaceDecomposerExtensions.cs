using GuardSpace.Collection;
using GuardSpace.Targeting;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace GuardSpace.Decomposition;

/// <summary>Whole-model decomposition on top of <see cref="ISafetySubspaceDecomposer"/>.</summary>
public static class SafetySubspaceDecomposerExtensions
{
    /// <summary>
    /// Decomposes every Linear layer of <paramref name="model"/> that the request's targets select, in module order,
    /// without changing the model. Reports progress after each layer and checks <paramref name="cancellationToken"/>
    /// before each; on cancellation or failure every decomposition made so far is disposed.
    /// </summary>
    /// <param name="decomposer">The decomposer (its options choose the method).</param>
    /// <param name="model">The model.</param>
    /// <param name="request">The layers, the adapter rank and the safety-prompt covariances (required by covariance methods).</param>
    /// <param name="progress">Per-layer progress.</param>
    /// <param name="cancellationToken">Cancels between and inside layers.</param>
    /// <returns>The decompositions keyed by layer path; the caller disposes each.</returns>
    public static IReadOnlyDictionary<string, LayerDecomposition> DecomposeModel(
        this ISafetySubspaceDecomposer decomposer,
        Module model,
        ModelDecompositionRequest request,
        IProgress<DecompositionProgress>? progress = null,
        CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(decomposer);
        ArgumentNullException.ThrowIfNull(request);
        var (targets, rank, safetyCovariances) = request;
        var layers = LinearLayerSelector.Select(model, targets);
        var results = new Dictionary<string, LayerDecomposition>(StringComparer.Ordinal);
        try
        {
            foreach (var (name, layer) in layers)
            {
                cancellationToken.ThrowIfCancellationRequested();
                Tensor? covariance = null;
                if (decomposer.Options.Method.UsesCovariance())
                {
                    if (safetyCovariances is null || !safetyCovariances.TryGet(name, out var c))
                    {
                        throw new ArgumentException($"Layer '{name}': {decomposer.Options.Method} needs its safety covariance; collect it with ActivationCovarianceCollector on the same targets.", nameof(request));
                    }

                    covariance = c.Sum;
                }

                results[name] = decomposer.Decompose(name, layer.weight!, covariance, rank, null, cancellationToken);
                progress?.Report(new DecompositionProgress(results.Count, layers.Count, name));
            }

            return results;
        }
        catch
        {
            foreach (var d in results.Values)
            {
                d.Dispose();
            }

            throw;
        }
    }
}
