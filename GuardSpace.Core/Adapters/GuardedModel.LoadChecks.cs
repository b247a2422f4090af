using GuardSpace.Diagnostics;
using GuardSpace.Internal;
using GuardSpace.Projection;
using GuardSpace.Serialization;
using GuardSpace.Targeting;
using Microsoft.Extensions.Logging;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace GuardSpace.Adapters;

/// <summary>The checks <see cref="GuardedModel.Load"/> runs on a saved adapter before it touches the model.</summary>
public sealed partial class GuardedModel
{
    /// <summary>Every tensor must match the checksum the config recorded for it, and the two files must hold the same keys.</summary>
    internal static void VerifyChecksums(IReadOnlyDictionary<string, string> expected, Dictionary<string, string> actual, string statePath, string configPath)
    {
        var problems = new List<string>();
        foreach (var (key, checksum) in expected)
        {
            if (!actual.TryGetValue(key, out var found))
            {
                problems.Add($"tensor '{key}' is listed in {AdapterFiles.ConfigFile} but missing from {AdapterFiles.StateFile}");
            }
            else if (!string.Equals(found, checksum, StringComparison.Ordinal))
            {
                problems.Add($"tensor '{key}' does not match its checksum ({found} instead of {checksum})");
            }
        }

        problems.AddRange(actual.Keys.Where(k => !expected.ContainsKey(k)).Select(k => $"tensor '{k}' has no checksum in {AdapterFiles.ConfigFile}"));
        if (problems.Count > 0)
        {
            throw new InvalidDataException(
                $"'{statePath}' does not match '{configPath}': its data is corrupted, or the two files come from different saves. " +
                $"Nothing was changed; restore both files from a backup or save the adapter again:{Environment.NewLine}- {string.Join(Environment.NewLine + "- ", problems)}");
        }
    }

    /// <summary>
    /// Content that any valid save satisfies: finite factors, orthonormal bases, and A = A P for the trained and the
    /// initial A of every guarded layer. Needs the shapes checked first.
    /// </summary>
    internal static void VerifyContent(AdapterConfig config, Dictionary<string, Tensor> tensors, string statePath)
    {
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var problems = new List<string>();
        var factors = new List<(string Key, Tensor Tensor)>();
        foreach (var layer in config.Layers)
        {
            foreach (var suffix in new[] { "lora_A", "lora_B", "lora_A0", "lora_B0" })
            {
                var key = $"{layer.Name}.{suffix}";
                var t = tensors[key];
                if (TensorChecks.IsFloatingPoint(t.dtype))
                {
                    factors.Add((key, t));
                }
                else
                {
                    problems.Add($"tensor '{key}' has dtype {t.dtype}, not a floating-point type");
                }
            }
        }

        // NaN and infinities survive a sum: one sum per factor in its own dtype (a cheap screen; an overflowing sum only
        // triggers the exact search), and an element-wise search only when a sum is not finite. No concatenated copy.
        if (factors.Any(f => !double.IsFinite(f.Tensor.sum().ToDouble())))
        {
            problems.AddRange(factors.Where(f => !isfinite(f.Tensor).all().item<bool>()).Select(f => $"tensor '{f.Key}' holds NaN or infinite values"));
        }

        foreach (var p in config.Projectors)
        {
            var key = $"projector.{p.Name}.basis";
            var basis = tensors[key];
            var blocks = p.Layers.SelectMany(l => new[] { $"{l}.lora_A", $"{l}.lora_A0" }).ToList();
            var (orthonormality, projection) = AdapterIntegrity.CheckProjector(basis, p.StoresNullBasis, p.NullDimension, p.InputWidth, [.. blocks.Select(b => tensors[b])]);
            var tolerance = AdapterIntegrity.OrthonormalityTolerance(basis.dtype, p.InputWidth);
            if (!(orthonormality <= tolerance))
            {
                problems.Add($"tensor '{key}' is not an orthonormal basis (||N^T N y - y|| / ||y|| = {orthonormality:G3} on random probes, tolerance {tolerance:G3})");
                continue;
            }

            for (var i = 0; i < blocks.Count; i++)
            {
                var allowed = AdapterIntegrity.ProjectionTolerance(tensors[blocks[i]].dtype);
                if (!(projection[i] <= allowed))
                {
                    problems.Add($"tensor '{blocks[i]}' leaves the null space of projector '{p.Name}' (||A - A P|| / ||A|| ~ {projection[i]:G3} on random probes, tolerance {allowed:G3})");
                }
            }
        }

        if (problems.Count > 0)
        {
            throw new InvalidDataException(
                $"'{statePath}' holds tensors no GuardSpace save produces: it is corrupted (or was edited). Loading it would break the null-space guarantee; " +
                $"nothing was changed. Restore it from a backup or save the adapter again:{Environment.NewLine}- {string.Join(Environment.NewLine + "- ", problems)}");
        }
    }

    /// <summary>Each guarded layer's weight must be the one the adapter was made from (format version 2 records a fingerprint).</summary>
    internal static void VerifyBaseWeights(AdapterConfig config, List<(string Name, Linear Layer)> targets, AdapterLoadOptions options, ILogger logger, string directory)
    {
        var layers = targets.ToDictionary(t => t.Name, t => t.Layer, StringComparer.Ordinal);
        var mismatches = new List<string>();
        foreach (var layer in config.Layers)
        {
            if (layer.OriginalWeight is not { } fingerprint)
            {
                continue;
            }

            var (differing, relative) = fingerprint.Compare(layers[layer.Name].weight!);
            if (differing > 0)
            {
                mismatches.Add($"'{layer.Name}': {differing} of {WeightFingerprint.SampleCount} sampled elements differ (largest difference {relative:G3} relative to the largest sample)");
            }
        }

        if (mismatches.Count == 0)
        {
            return;
        }

        if (options.AllowBaseWeightMismatch)
        {
            Log.BaseWeightMismatchAllowed(logger, string.Join("; ", mismatches));
            return;
        }

        throw new ArgumentException(
            $"The adapter in '{directory}' was made from other weights than this model's; nothing was changed. Its frozen residuals are recomputed from " +
            "the model's weights, so the loaded model would not compute what the saved one did. Load it onto the model it was trained from (in any dtype), " +
            $"or set AdapterLoadOptions.AllowBaseWeightMismatch = true to load it anyway:{Environment.NewLine}- {string.Join(Environment.NewLine + "- ", mismatches)}");
    }

    /// <summary>The attach options a config describes (its values were checked by <see cref="AdapterConfigValidator"/>).</summary>
    private static GuardedLoraOptions OptionsFrom(AdapterConfig config, string configPath)
    {
        var options = new GuardedLoraOptions
        {
            Method = Enum.Parse<InitializationMethod>(config.Method),
            Rank = config.Rank,
            Scale = config.Scale,
            Seed = config.Seed,
            Targets = TargetModules.ExactNames([.. config.Targets]),
            NullSpace = new NullSpaceOptions
            {
                Rule = Enum.Parse<NullSpaceThresholdRule>(config.NullSpace.Rule),
                RelativeThreshold = config.NullSpace.RelativeThreshold,
                AbsoluteFloor = config.NullSpace.AbsoluteFloor,
                AbsoluteThreshold = config.NullSpace.AbsoluteThreshold,
                EnergyFraction = config.NullSpace.EnergyFraction,
                EmptyPolicy = Enum.Parse<EmptyNullSpacePolicy>(config.NullSpace.EmptyPolicy),
                MinimumNullFraction = config.NullSpace.MinimumNullFraction,
            },
            HarmfulDriftPenalty = config.HarmfulDriftPenalty,
            HarmfulDriftFloor = config.HarmfulDriftFloor,
            TrackHarmfulDrift = config.TrackHarmfulDrift,
        };

        try
        {
            options.Validate();
        }
        catch (ArgumentException ex)
        {
            throw new InvalidDataException($"'{configPath}' holds invalid values; nothing was changed: {ex.Message}", ex);
        }

        return options;
    }
}
