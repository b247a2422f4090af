using GuardSpace.Adapters;
using GuardSpace.Attach;
using GuardSpace.Diagnostics;
using GuardSpace.Internal;
using GuardSpace.Projection;
using GuardSpace.Storage;
using Microsoft.Extensions.Logging;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace GuardSpace.Serialization;

/// <summary>Attaches a saved adapter to the model it was made from, after checking everything it reads.</summary>
internal static class AdapterLoader
{
    /// <summary>A load: the model with the original weights, the folder, and how to report and tolerate.</summary>
    public sealed record Request(Module Model, string Directory, ILogger Logger, AdapterLoadOptions Options, IProgress<AttachProgress>? Progress, CancellationToken Cancellation);

    /// <summary>
    /// Reads the config and the state file, checks checksums, names and shapes, content (finite factors, orthonormal bases,
    /// A = A P) and the base weights' fingerprints, rebuilds projectors and factors, recomputes the residuals as
    /// <c>W - s B0 A0</c>, commits the surgery and restores the trained factors. Changes nothing on failure or cancellation.
    /// </summary>
    public static AttachedAdapters Load(Request request)
    {
        var (model, directory, logger) = (request.Model, request.Directory, request.Logger);
        ExistingAdapters.ThrowIfGuarded(model);
        var configPath = Path.Combine(directory, AdapterFiles.ConfigFile);
        request.Progress?.Report(new AttachProgress(AttachStage.Reading, 0, 2, configPath));
        var config = AdapterConfigReader.Read(configPath);
        var statePath = Path.Combine(directory, AdapterFiles.StateFile);
        if (!File.Exists(statePath))
        {
            throw new InvalidDataException($"'{statePath}' is missing: a GuardSpace adapter folder holds {AdapterFiles.StateFile} and {AdapterFiles.ConfigFile}.");
        }

        request.Cancellation.ThrowIfCancellationRequested();
        var checksums = config.TensorChecksums is null ? null : new Dictionary<string, string>(StringComparer.Ordinal);
        var (tensors, _) = SafetensorsReader.ReadAll(statePath, logger: logger, checksums: checksums);
        request.Progress?.Report(new AttachProgress(AttachStage.Reading, 2, 2, statePath));
        try
        {
            var context = new AttachContext(model, AdapterConfigMapping.OptionsOf(config, configPath), logger, request.Progress, request.Cancellation);
            var parts = new AttachedParts(model, context.Options, logger);
            try
            {
                var targets = Verify(request, config, tensors, checksums);
                var projectorOf = RestoreProjectors(config, tensors, parts);
                RestoreFactors(config, tensors, parts, statePath);
                var factorOf = parts.Factors.ToDictionary(f => f.Name, StringComparer.Ordinal);
                var layers = config.Layers.ToDictionary(l => l.Name, StringComparer.Ordinal);
                var state = AdapterAssembly.Build(context, parts, targets, projectorOf, (_, name, layer, _) => SavedInit(config, tensors, layers[name], layer, factorOf));
                RestoreTrainedFactors(state, tensors);
                Log.Loaded(logger, state.List.Count, directory, config.FormatVersion);
                return state;
            }
            catch
            {
                parts.ReleaseAfterFailure();
                throw;
            }
        }
        finally
        {
            foreach (var t in tensors.Values)
            {
                t.Dispose();
            }
        }
    }

    private static List<(string Name, Linear Layer)> Verify(Request request, AdapterConfig config, Dictionary<string, Tensor> tensors, Dictionary<string, string>? checksums)
    {
        var configPath = Path.Combine(request.Directory, AdapterFiles.ConfigFile);
        var statePath = Path.Combine(request.Directory, AdapterFiles.StateFile);
        request.Cancellation.ThrowIfCancellationRequested();
        request.Progress?.Report(new AttachProgress(AttachStage.Verifying, 0, 1, null));
        if (checksums is not null)
        {
            AdapterLoadChecks.VerifyChecksums(config.TensorChecksums!, checksums, statePath, configPath);
        }
        else
        {
            Log.LoadedWithoutChecksums(request.Logger, configPath, config.FormatVersion);
        }

        var targets = AdapterLoadChecks.CheckAgainstModel(request.Model, config, tensors, request.Directory);
        AdapterLoadChecks.VerifyContent(config, tensors, statePath);
        AdapterLoadChecks.VerifyBaseWeights(config, targets, request.Options, request.Logger, request.Directory);
        request.Cancellation.ThrowIfCancellationRequested();
        request.Progress?.Report(new AttachProgress(AttachStage.Verifying, 1, 1, null));
        return targets;
    }

    private static Dictionary<string, ProjectorHandle> RestoreProjectors(AdapterConfig config, Dictionary<string, Tensor> tensors, AttachedParts parts)
    {
        var projectorOf = new Dictionary<string, ProjectorHandle>(StringComparer.Ordinal);
        foreach (var p in config.Projectors)
        {
            var diagnostics = new NullSpaceDiagnostics(p.Name, p.InputWidth, p.NullDimension, Enum.Parse<NullSpaceThresholdRule>(p.Rule),
                p.Threshold, p.MaxEigenvalue, p.ProtectedEnergyFraction, p.StoresNullBasis, p.FellBack);
            var handle = new ProjectorHandle(NullSpaceProjector.FromBasis(tensors[AdapterSaver.BasisKey(p.Name)], diagnostics));
            parts.Projectors.Add(handle);
            p.Layers.ToList().ForEach(l => projectorOf[l] = handle);
        }

        return projectorOf;
    }

    private static void RestoreFactors(AdapterConfig config, Dictionary<string, Tensor> tensors, AttachedParts parts, string statePath)
    {
        var configPath = Path.Combine(Path.GetDirectoryName(statePath)!, AdapterFiles.ConfigFile);
        foreach (var name in config.Layers.Select(l => l.HarmfulFactor).OfType<string>().Distinct(StringComparer.Ordinal))
        {
            var key = $"{AdapterSaver.HarmfulFactorPrefix}{name}";
            var width = config.Layers.First(l => l.HarmfulFactor == name).InFeatures;
            if (!tensors.TryGetValue(key, out var saved) || saved.dim() != 2 || saved.shape[0] != width || !IsFinite(saved))
            {
                throw new InvalidDataException($"'{statePath}': the harmful covariance factor '{key}' named in '{configPath}' is missing, not {width} x k, or not finite. Save the adapter again.");
            }

            parts.Factors.Add(new HarmfulCovarianceFactor(name, saved.to_type(ScalarType.Float64).clone()));
        }
    }

    /// <summary>A saved layer's initial state: A0 and B0 as saved, and the residual <c>W - s B0 A0</c> recomputed from the model's weight.</summary>
    private static LayerInit SavedInit(AdapterConfig config, Dictionary<string, Tensor> tensors, LayerConfig saved, Linear layer, Dictionary<string, HarmfulCovarianceFactor> factorOf)
    {
        var w = layer.weight!;
        var factorType = AdapterPrecision.FactorType(w.dtype);
        var a0 = tensors[$"{saved.Name}.lora_A0"];
        var b0 = tensors[$"{saved.Name}.lora_B0"];
        Tensor? residual = null;
        if (config.BaseWeightsModified)
        {
            using var noGrad = no_grad();
            var delta = b0.to(ScalarType.Float64, w.device).mm(a0.to(ScalarType.Float64, w.device)) * config.Scale;
            residual = (w.detach().to_type(ScalarType.Float64) - delta).to_type(w.dtype);
        }

        return new LayerInit(a0.to(factorType, w.device), b0.to(factorType, w.device), residual, null, saved.Group)
        {
            HarmfulFactor = saved.HarmfulFactor is { } f ? factorOf[f] : null,
            HarmfulEnergy = saved.HarmfulEnergy,
            HarmfulMeanEigenvalue = saved.HarmfulMeanEigenvalue,
        };
    }

    private static void RestoreTrainedFactors(AttachedAdapters state, Dictionary<string, Tensor> tensors)
    {
        using var noGrad = no_grad();
        foreach (var adapter in state.List)
        {
            adapter.LoraA.copy_(tensors[$"{adapter.LayerName}.lora_A"]);
            adapter.LoraB.copy_(tensors[$"{adapter.LayerName}.lora_B"]);
        }
    }

    private static bool IsFinite(Tensor t)
    {
        using var scope = NewDisposeScope();
        return isfinite(t).all().item<bool>();
    }
}
