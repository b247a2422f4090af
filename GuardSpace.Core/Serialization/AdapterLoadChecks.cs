using GuardSpace.Adapters;
using GuardSpace.Diagnostics;
using GuardSpace.Internal;
using Microsoft.Extensions.Logging;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace GuardSpace.Serialization;

/// <summary>The checks a load runs on a saved adapter before it touches the model; each reports every problem in one exception.</summary>
internal static class AdapterLoadChecks
{
    /// <summary>Every tensor must match the checksum the config recorded for it, and the two files must hold the same keys.</summary>
    public static void VerifyChecksums(IReadOnlyDictionary<string, string> expected, Dictionary<string, string> actual, string statePath, string configPath)
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
    public static void VerifyContent(AdapterConfig config, Dictionary<string, Tensor> tensors, string statePath)
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
            var key = AdapterSaver.BasisKey(p.Name);
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
    public static void VerifyBaseWeights(AdapterConfig config, List<(string Name, Linear Layer)> targets, AdapterLoadOptions options, ILogger logger, string directory)
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

    /// <summary>Every layer, tensor name and shape of the save must fit the model; returns the target layers.</summary>
    public static List<(string Name, Linear Layer)> CheckAgainstModel(Module model, AdapterConfig config, Dictionary<string, Tensor> tensors, string directory)
    {
        var modules = model.named_modules().ToDictionary(m => m.name, m => m.module, StringComparer.Ordinal);
        var problems = new List<string>();
        var targets = new List<(string, Linear)>();
        foreach (var layer in config.Layers)
        {
            if (!modules.TryGetValue(layer.Name, out var module))
            {
                problems.Add($"'{layer.Name}' does not exist in the model");
                continue;
            }

            if (module is not Linear linear)
            {
                problems.Add($"'{layer.Name}' is a {module.GetType().Name}, not a Linear (is an adapter already attached?)");
                continue;
            }

            if (linear.out_features != layer.OutFeatures || linear.in_features != layer.InFeatures)
            {
                problems.Add($"'{layer.Name}' is {linear.out_features} x {linear.in_features} in the model but {layer.OutFeatures} x {layer.InFeatures} in the adapter");
                continue;
            }

            var r = config.Rank;
            foreach (var (suffix, shape) in new[] { ("lora_A", new[] { (long)r, layer.InFeatures }), ("lora_B", new[] { layer.OutFeatures, r }), ("lora_A0", new[] { (long)r, layer.InFeatures }), ("lora_B0", new[] { layer.OutFeatures, r }) })
            {
                var key = $"{layer.Name}.{suffix}";
                if (!tensors.TryGetValue(key, out var t))
                {
                    problems.Add($"tensor '{key}' is missing from {AdapterFiles.StateFile}");
                }
                else if (!t.shape.SequenceEqual(shape))
                {
                    problems.Add($"tensor '{key}' has shape [{string.Join(", ", t.shape)}], expected [{string.Join(", ", shape)}]");
                }
            }

            targets.Add((layer.Name, linear));
        }

        foreach (var p in config.Projectors)
        {
            var key = AdapterSaver.BasisKey(p.Name);
            var columns = p.StoresNullBasis ? p.NullDimension : p.InputWidth - p.NullDimension;
            if (!tensors.TryGetValue(key, out var basis))
            {
                problems.Add($"tensor '{key}' is missing from {AdapterFiles.StateFile}");
            }
            else if (!basis.shape.SequenceEqual([p.InputWidth, columns]))
            {
                problems.Add($"tensor '{key}' has shape [{string.Join(", ", basis.shape)}], expected [{p.InputWidth}, {columns}]");
            }
        }

        if (problems.Count > 0)
        {
            throw new ArgumentException($"The adapter in '{directory}' does not fit this model; nothing was changed:{Environment.NewLine}- {string.Join(Environment.NewLine + "- ", problems)}");
        }

        return targets;
    }
}
