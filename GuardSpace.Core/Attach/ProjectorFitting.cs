using GuardSpace.Adapters;
using GuardSpace.Collection;
using GuardSpace.Projection;
using TorchSharp;
using static TorchSharp.torch;

namespace GuardSpace.Attach;

/// <summary>
/// Fits one null-space projector per covariance group (layers that read the same input, such as q/k/v, share one), and
/// the harmful covariance factor the drift monitor needs. Everything it makes is handed to the attachment's parts at once,
/// so a failure later in the attachment frees it.
/// </summary>
internal static class ProjectorFitting
{
    /// <summary>The projector and factor of each layer (absent where there is none).</summary>
    public sealed record Fitted(Dictionary<string, ProjectorHandle> ProjectorOf, Dictionary<string, HarmfulCovarianceFactor> FactorOf);

    /// <summary>Fits the groups of <paramref name="names"/> in <paramref name="harmful"/>.</summary>
    public static Fitted Fit(AttachContext context, AttachedParts parts, CovarianceSet harmful, string[] names)
    {
        var options = context.Options;
        var projectorOf = new Dictionary<string, ProjectorHandle>(StringComparer.Ordinal);
        var factorOf = new Dictionary<string, HarmfulCovarianceFactor>(StringComparer.Ordinal);
        var groups = names.Select(n => harmful[n]).Distinct().ToList();
        for (var i = 0; i < groups.Count; i++)
        {
            context.ThrowIfCancelled();
            var group = groups[i];
            context.Report(AttachStage.NullSpaces, i, groups.Count, group.Key);
            HarmfulCovarianceFactor? factor;
            if (options.Method.UsesProjector())
            {
                var (projector, f) = NullSpaceProjector.Fit(group.Key, group.Sum, GroupNullSpace(options, group), context.Logger, group.Layers, options.TracksHarmfulDrift);
                var handle = new ProjectorHandle(projector);
                parts.Projectors.Add(handle);
                factor = f;
                group.Layers.ToList().ForEach(layer => projectorOf[layer] = handle);
            }
            else
            {
                factor = HarmfulCovarianceFactor.FromCovariance(group.Key, group.Sum);
            }

            if (factor is not null)
            {
                parts.Factors.Add(factor);
                group.Layers.ToList().ForEach(layer => factorOf[layer] = factor);
            }
        }

        return new Fitted(projectorOf, factorOf);
    }

    /// <summary><c>tr(C) / n</c> in float64.</summary>
    public static double MeanEigenvalue(Tensor covariance)
    {
        using var scope = NewDisposeScope();
        return covariance.diagonal().to_type(ScalarType.Float64).mean().ToDouble();
    }

    /// <summary><c>||W C^(1/2)||_F^2 = tr(W C W^T)</c> in float64.</summary>
    public static double OutputEnergy(Tensor weight, Tensor covariance)
    {
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var w = weight.detach().to(ScalarType.Float64, covariance.device);
        return (w.mm(covariance.to_type(ScalarType.Float64)) * w).sum().ToDouble();
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
}
