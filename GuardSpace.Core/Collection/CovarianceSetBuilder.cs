using GuardSpace.Diagnostics;
using Microsoft.Extensions.Logging;
using TorchSharp;
using static TorchSharp.torch;

namespace GuardSpace.Collection;

/// <summary>
/// Turns a collector's running sums into layer covariances, after checking that the calibration run reached every hooked
/// layer, fed every member of a shared-input group, and collected tokens for each.
/// </summary>
internal static class CovarianceSetBuilder
{
    /// <summary>The covariances of <paramref name="groups"/> in module order; the sums are taken (<paramref name="transfer"/>) or cloned.</summary>
    /// <exception cref="InvalidOperationException">A layer never fired, a shared input reached only part of its group, or no tokens were collected.</exception>
    public static List<LayerCovariance> Build(IReadOnlyList<string> layers, IReadOnlyList<CovarianceAccumulator> groups, bool transfer, ILogger logger)
    {
        var fired = groups.SelectMany(g => g.Members.Select(m => m.Name)).ToHashSet(StringComparer.Ordinal);
        var silent = layers.Where(l => !fired.Contains(l)).ToList();
        if (silent.Count > 0 && silent.Count == layers.Count)
        {
            throw new InvalidOperationException(
                $"None of the hooked layers [{string.Join(", ", silent)}] received an input: the calibration run made no forward pass through the model. " +
                "Check that it runs the model on its prompts (model.call(inputs)) and that they are not empty; if it does, the model calls its " +
                "layers with forward() instead of call(), which skips hooks.");
        }

        if (silent.Count > 0)
        {
            throw new InvalidOperationException(
                $"No activations reached the hooked layer(s) [{string.Join(", ", silent)}]: they never fired. Its parent probably calls .forward() instead of .call(); " +
                "TorchSharp runs hooks only through call(). Make the parent call child.call(x), run the model through model.call(...), or leave these layers out of the targets.");
        }

        foreach (var group in groups)
        {
            if (group.Current is { } current && current.Seen.Count < group.Members.Count)
            {
                var missing = group.Members.Select(m => m.Name).Where(n => !current.Seen.Contains(n));
                throw new InvalidOperationException(
                    $"Inconsistent shared inputs: the last input of [{group.Describe()}] did not reach [{string.Join(", ", missing)}] (was a forward pass interrupted?).");
            }
        }

        var total = groups.Sum(g => g.TokenCount);
        if (total == 0)
        {
            throw new InvalidOperationException(
                "No tokens were collected: every forward pass was empty or every token was masked out. Check the calibration batches and the token masks.");
        }

        var empty = groups.Where(g => g.TokenCount == 0).Select(g => g.Describe()).ToList();
        if (empty.Count > 0)
        {
            throw new InvalidOperationException(
                $"No tokens were collected for [{string.Join("; ", empty)}]: every token they received was masked out.");
        }

        var ordered = groups
            .Select(g => (Group: g, Members: g.Members.OrderBy(m => m.Index).Select(m => m.Name).ToList()))
            .OrderBy(g => g.Group.Members.Min(m => m.Index))
            .ToList();

        var result = new List<LayerCovariance>(ordered.Count);
        try
        {
            foreach (var (group, members) in ordered)
            {
                Tensor sum;
                if (transfer)
                {
                    sum = group.TakeSum();
                }
                else
                {
                    using var noGrad = no_grad();
                    sum = group.Sum!.clone().DetachFromDisposeScope();
                }

                var covariance = new LayerCovariance(members, sum, group.TokenCount, group.SampleCount);
                result.Add(covariance);
                if (covariance.TokenCount < covariance.InputWidth)
                {
                    Log.FewerTokensThanWidth(logger, covariance.Key, string.Join(", ", covariance.Layers), covariance.TokenCount, covariance.InputWidth);
                }
            }
        }
        catch
        {
            result.ForEach(c => c.Dispose());
            throw;
        }

        return result;
    }
}
