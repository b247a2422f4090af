using System.Text.Json;
using GuardSpace.Diagnostics;
using GuardSpace.Projection;
using GuardSpace.Serialization;
using GuardSpace.Targeting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace GuardSpace.Adapters;

public sealed partial class GuardedModel
{
    /// <summary>State-file key prefix of the harmful covariance factors (one per covariance group).</summary>
    private const string HarmfulFactorPrefix = "harmful_factor.";

    /// <summary>
    /// Saves the adapter state to <paramref name="directory"/>: <see cref="AdapterFiles.StateFile"/> (A, B, the initial
    /// A0 and B0, and every projector basis) and <see cref="AdapterFiles.ConfigFile"/> (method, rank, targets,
    /// thresholds, library version, whether the base weights were changed, a checksum of every tensor and a fingerprint
    /// of every guarded layer's original weight). Both files are written in full to temporary files first and then
    /// moved in together: a failure leaves the previous pair as it was.
    /// </summary>
    public void Save(string directory)
    {
        ThrowIfDisposed();
        ArgumentException.ThrowIfNullOrWhiteSpace(directory);
        using var scope = NewDisposeScope();
        var tensors = new Dictionary<string, Tensor>(StringComparer.Ordinal);
        foreach (var adapter in _adapters)
        {
            tensors[$"{adapter.LayerName}.lora_A"] = adapter.LoraA.detach();
            tensors[$"{adapter.LayerName}.lora_B"] = adapter.LoraB.detach();
            tensors[$"{adapter.LayerName}.lora_A0"] = adapter.InitialA;
            tensors[$"{adapter.LayerName}.lora_B0"] = adapter.InitialB;
        }

        foreach (var handle in _projectors)
        {
            tensors[$"projector.{handle.Projector.Name}.basis"] = ((NullSpaceProjector)handle.Projector).Basis;
        }

        foreach (var factor in _factors)
        {
            tensors[$"{HarmfulFactorPrefix}{factor.Name}"] = factor.Factor;
        }

        var n = Options.NullSpace;
        var config = new AdapterConfig
        {
            Method = Options.Method.ToString(),
            Rank = Options.Rank,
            Scale = Options.Scale,
            Seed = Options.Seed,
            BaseWeightsModified = Options.Method.UsesDecomposition(),
            Targets = [.. _adapters.Select(a => a.LayerName)],
            NullSpace = new NullSpaceConfig(n.Rule.ToString(), n.RelativeThreshold, n.AbsoluteFloor, n.AbsoluteThreshold, n.EnergyFraction, n.EmptyPolicy.ToString(), n.MinimumNullFraction),
            HarmfulDriftPenalty = Options.EffectiveHarmfulDriftPenalty,
            HarmfulDriftFloor = Options.HarmfulDriftFloor,
            TrackHarmfulDrift = _factors.Count > 0,
            Layers = [.. Layers.Select((l, i) => new LayerConfig(
                l.Name, l.OutFeatures, l.InFeatures, _adapters[i].FrozenWeight.dtype.ToString(), l.Interception.ToString(), l.CovarianceGroup, l.Frozen,
                _adapters[i].LoraA.dtype.ToString(), _adapters[i].OriginalWeight, _adapters[i].HarmfulFactor?.Name, _adapters[i].HarmfulEnergy, _adapters[i].HarmfulMeanEigenvalue))],
            Projectors = [.. _projectors.Select(h =>
            {
                var d = h.Projector.Diagnostics;
                var layers = _adapters.Where(a => ReferenceEquals(a.Projector, h)).Select(a => a.LayerName).ToList();
                return new ProjectorConfig(d.Name, layers, d.InputWidth, d.NullDimension, d.StoresNullBasis, d.Rule.ToString(), d.Threshold, d.MaxEigenvalue, d.ProtectedEnergyFraction, d.FellBack);
            })],
        };

        Directory.CreateDirectory(directory);
        var statePath = Path.Combine(directory, AdapterFiles.StateFile);
        var checksums = new Dictionary<string, string>(StringComparer.Ordinal);
        using var transaction = new FileTransaction();
        var metadata = new Dictionary<string, string> { ["format"] = "pt", ["guardspace_format"] = AdapterConfig.FormatName };
        transaction.Stage(statePath, SafetensorsFile.WriteTemporary(statePath, tensors, metadata, _logger, checksums));
        transaction.StageText(Path.Combine(directory, AdapterFiles.ConfigFile), JsonSerializer.Serialize(config with { TensorChecksums = checksums }, AdapterConfig.Json));
        transaction.Commit();
    }

    /// <summary>
    /// Attaches a saved adapter to <paramref name="model"/>, which must hold the ORIGINAL weights the adapter was made
    /// from (the frozen residuals are recomputed as <c>W - s B0 A0</c>). Before touching the model it checks, and reports
    /// in one exception each: the config's values; every tensor against its checksum; every name and shape against the
    /// model; that the factors are finite, every projector basis is orthonormal and every guarded A satisfies A = A P;
    /// and each layer's weight against the fingerprint of the original one. Like <see cref="Attach"/>, it changes nothing
    /// on failure or cancellation.
    /// </summary>
    /// <param name="model">The model with the original weights (in any dtype, on any device).</param>
    /// <param name="directory">The folder <see cref="Save"/> wrote.</param>
    /// <param name="loggerFactory">Receives the load report and warnings (an old format version, an allowed weight mismatch).</param>
    /// <param name="options">What to tolerate; defaults when null (nothing).</param>
    /// <param name="progress">Stage-by-stage progress: "reading", "verifying", then Attach's "decomposition" and "surgery".</param>
    /// <param name="cancellationToken">Checked between stages and layers up to the end of the surgery, as in <see cref="Attach"/>.</param>
    /// <returns>The handle of the loaded adapters, ready to train on.</returns>
    /// <exception cref="InvalidDataException">A file is missing, truncated or corrupted, or the config holds invalid values (the message names the file and every field).</exception>
    /// <exception cref="ArgumentException">The adapter does not fit the model, or was made from other weights (the message lists every mismatch).</exception>
    /// <exception cref="InvalidOperationException">The model already holds GuardSpace adapters.</exception>
    public static GuardedModel Load(
        Module model,
        string directory,
        ILoggerFactory? loggerFactory = null,
        AdapterLoadOptions? options = null,
        IProgress<AttachProgress>? progress = null,
        CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentException.ThrowIfNullOrWhiteSpace(directory);
        options ??= new AdapterLoadOptions();
        var logger = loggerFactory?.CreateLogger("GuardSpace") ?? NullLogger.Instance;
        ExistingAdapters.ThrowIfGuarded(model);
        var configPath = Path.Combine(directory, AdapterFiles.ConfigFile);
        progress?.Report(new AttachProgress("reading", 0, 2, configPath));
        var config = ReadConfig(configPath);
        var statePath = Path.Combine(directory, AdapterFiles.StateFile);
        if (!File.Exists(statePath))
        {
            throw new InvalidDataException($"'{statePath}' is missing: a GuardSpace adapter folder holds {AdapterFiles.StateFile} and {AdapterFiles.ConfigFile}.");
        }

        cancellationToken.ThrowIfCancellationRequested();
        var checksums = config.TensorChecksums is null ? null : new Dictionary<string, string>(StringComparer.Ordinal);
        var (tensors, _) = SafetensorsFile.Read(statePath, logger: logger, checksums: checksums);
        progress?.Report(new AttachProgress("reading", 2, 2, statePath));
        var projectors = new List<ProjectorHandle>();
        var factors = new List<HarmfulCovarianceFactor>();
        var built = new List<GuardedLoraAdapter>();
        try
        {
            cancellationToken.ThrowIfCancellationRequested();
            progress?.Report(new AttachProgress("verifying", 0, 1, null));
            if (checksums is not null)
            {
                VerifyChecksums(config.TensorChecksums!, checksums, statePath, configPath);
            }
            else
            {
                Log.LoadedWithoutChecksums(logger, configPath, config.FormatVersion);
            }

            var loraOptions = OptionsFrom(config, configPath);
            var targets = CheckAgainstModel(model, config, tensors, directory);
            VerifyContent(config, tensors, statePath);
            VerifyBaseWeights(config, targets, options, logger, directory);
            cancellationToken.ThrowIfCancellationRequested();
            progress?.Report(new AttachProgress("verifying", 1, 1, null));

            var projectorOf = new Dictionary<string, ProjectorHandle>(StringComparer.Ordinal);
            foreach (var p in config.Projectors)
            {
                var diagnostics = new NullSpaceDiagnostics(p.Name, p.InputWidth, p.NullDimension, Enum.Parse<NullSpaceThresholdRule>(p.Rule),
                    p.Threshold, p.MaxEigenvalue, p.ProtectedEnergyFraction, p.StoresNullBasis, p.FellBack);
                var handle = new ProjectorHandle(NullSpaceProjector.FromBasis(tensors[$"projector.{p.Name}.basis"], diagnostics));
                projectors.Add(handle);
                p.Layers.ToList().ForEach(l => projectorOf[l] = handle);
            }

            foreach (var name in config.Layers.Select(l => l.HarmfulFactor).OfType<string>().Distinct(StringComparer.Ordinal))
            {
                var width = config.Layers.First(l => l.HarmfulFactor == name).InFeatures;
                if (!tensors.TryGetValue($"{HarmfulFactorPrefix}{name}", out var saved) || saved.dim() != 2 || saved.shape[0] != width || !TensorIsFinite(saved))
                {
                    throw new InvalidDataException($"'{statePath}': the harmful covariance factor '{HarmfulFactorPrefix}{name}' named in '{configPath}' is missing, not {width} x k, or not finite. Save the adapter again.");
                }

                factors.Add(new HarmfulCovarianceFactor(name, tensors[$"{HarmfulFactorPrefix}{name}"].to_type(ScalarType.Float64).clone()));
            }

            var factorOf = factors.ToDictionary(f => f.Name, StringComparer.Ordinal);
            var layerConfigs = config.Layers.ToDictionary(l => l.Name, StringComparer.Ordinal);
            var groups = config.Layers.ToDictionary(l => l.Name, l => l.Group, StringComparer.Ordinal);
            var guarded = AttachCore(model, loraOptions, targets, projectorOf, projectors, built, logger, progress, cancellationToken, (_, name, layer, _) =>
            {
                var w = layer.weight!;
                var factorType = Internal.AdapterPrecision.FactorType(w.dtype);
                var a0 = tensors[$"{name}.lora_A0"];
                var b0 = tensors[$"{name}.lora_B0"];
                Tensor? residual = null;
                if (config.BaseWeightsModified)
                {
                    using var noGrad = no_grad();
                    var delta = b0.to(ScalarType.Float64, w.device).mm(a0.to(ScalarType.Float64, w.device)) * config.Scale;
                    residual = (w.detach().to_type(ScalarType.Float64) - delta).to_type(w.dtype);
                }

                var saved = layerConfigs[name];
                return new LayerInit(a0.to(factorType, w.device), b0.to(factorType, w.device), residual, null, groups[name])
                {
                    HarmfulFactor = saved.HarmfulFactor is { } f ? factorOf[f] : null,
                    HarmfulEnergy = saved.HarmfulEnergy,
                    HarmfulMeanEigenvalue = saved.HarmfulMeanEigenvalue,
                };
            }, factors).RestoreTrainedFactors(tensors);
            Log.Loaded(logger, guarded._adapters.Count, directory, config.FormatVersion);
            return guarded;
        }
        catch
        {
            ReleaseAfterFailure(built);
            projectors.ForEach(p => p.Dispose());
            factors.ForEach(f => f.Dispose());
            throw;
        }
        finally
        {
            foreach (var t in tensors.Values)
            {
                t.Dispose();
            }
        }
    }

    private static bool TensorIsFinite(Tensor t)
    {
        using var scope = NewDisposeScope();
        return isfinite(t).all().item<bool>();
    }

    /// <summary>
    /// Exports the fine-tune as a plain LoRA delta relative to the ORIGINAL weights, in PEFT's layout, so any LoRA runtime
    /// can apply it to the original checkpoint. Per layer, <c>W_final - W = B_exp A_exp</c> with
    /// <c>[s B, -s B0] [A; A0]</c> (rank 2r) where the initial factors are non-zero (GuardSpace, PiSSA, CorDA), <c>(s B) A</c>
    /// (rank r) where B0 = 0 (LoRA, NullSpace-LoRA), and a zero B at rank r for a layer that did not change (a frozen one).
    /// Writes <see cref="AdapterFiles.PeftWeightsFile"/> with keys <c>base_model.model.&lt;path&gt;.lora_A.weight</c> /
    /// <c>.lora_B.weight</c> and <see cref="AdapterFiles.PeftConfigFile"/>: <c>r</c> is the most common layer rank,
    /// <c>rank_pattern</c> and <c>alpha_pattern</c> list the layers of another rank, and every layer's alpha equals its rank,
    /// so PEFT's scaling <c>lora_alpha / r</c> is 1 everywhere. Files are replaced atomically.
    /// </summary>
    /// <param name="directory">The folder to write to (created if needed).</param>
    /// <param name="options"><c>base_model_name_or_path</c> and <c>task_type</c>; null for neither.</param>
    public void ExportPeft(string directory, PeftExportOptions? options = null)
    {
        ThrowIfDisposed();
        ArgumentException.ThrowIfNullOrWhiteSpace(directory);
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var tensors = new Dictionary<string, Tensor>(StringComparer.Ordinal);
        var ranks = new Dictionary<string, int>(StringComparer.Ordinal);
        foreach (var adapter in _adapters)
        {
            var s = adapter.Scale;
            var (a, b) = (adapter.LoraA.detach(), adapter.LoraB.detach());
            (Tensor A, Tensor B) exported =
                adapter.InitialB.abs().max().ToDouble() == 0 ? (a, b * s)
                : a.eq(adapter.InitialA).all().item<bool>() && b.eq(adapter.InitialB).all().item<bool>() ? (a, zeros_like(b)) // unchanged: the delta is exactly zero
                : (cat([a, adapter.InitialA], 0), cat([b * s, adapter.InitialB * -s], 1));
            tensors[$"{AdapterFiles.PeftKeyPrefix}{adapter.LayerName}.lora_A.weight"] = exported.A.contiguous();
            tensors[$"{AdapterFiles.PeftKeyPrefix}{adapter.LayerName}.lora_B.weight"] = exported.B.contiguous();
            ranks[adapter.LayerName] = (int)exported.A.shape[0];
        }

        // PEFT matches rank_pattern/alpha_pattern keys against the module path (exact, or as a suffix after a dot).
        var rank = ranks.Values.GroupBy(r => r).OrderByDescending(g => g.Count()).ThenBy(g => g.Key).Select(g => g.Key).FirstOrDefault(Options.Rank);
        var pattern = ranks.Where(kv => kv.Value != rank).OrderBy(kv => kv.Key, StringComparer.Ordinal).ToDictionary(kv => kv.Key, kv => kv.Value, StringComparer.Ordinal);
        var config = new Dictionary<string, object?>
        {
            ["peft_type"] = "LORA",
            ["r"] = rank,
            ["lora_alpha"] = rank,
            ["rank_pattern"] = pattern,
            ["alpha_pattern"] = pattern,
            ["target_modules"] = PeftTargetModules(),
            ["lora_dropout"] = 0.0,
            ["bias"] = "none",
            ["fan_in_fan_out"] = false,
            ["init_lora_weights"] = true,
            ["use_rslora"] = false,
            ["use_dora"] = false,
            ["inference_mode"] = true,
            ["modules_to_save"] = null,
            ["base_model_name_or_path"] = options?.BaseModelNameOrPath,
            ["task_type"] = options?.TaskType,
            ["guardspace"] = new Dictionary<string, object?>
            {
                ["version"] = GuardSpaceInfo.Version,
                ["method"] = Options.Method.ToString(),
                ["rank"] = Options.Rank,
                ["scale"] = Options.Scale,
                ["delta"] = "W_final - W_original = B_exp A_exp per layer: [s B, -s B0] [A; A0] (rank 2r) when B0 != 0, (s B) A (rank r) when B0 = 0, zero B when the layer did not change",
            },
        };

        Directory.CreateDirectory(directory);
        SafetensorsFile.Write(Path.Combine(directory, AdapterFiles.PeftWeightsFile), tensors, new Dictionary<string, string> { ["format"] = "pt" }, _logger);
        AtomicFile.WriteAllText(Path.Combine(directory, AdapterFiles.PeftConfigFile), JsonSerializer.Serialize(config, AdapterConfig.Json));
    }

    /// <summary>
    /// <c>target_modules</c> as PEFT writes it: the layers' last path segments (<c>q_proj</c>, ...) when they pick exactly the
    /// guarded layers (PEFT matches a name that equals a segment or ends with "." + segment); otherwise the full paths.
    /// </summary>
    private string[] PeftTargetModules()
    {
        var guarded = _adapters.Select(a => a.LayerName).ToHashSet(StringComparer.Ordinal);
        var segments = guarded.Select(n => n[(n.LastIndexOf('.') + 1)..]).ToHashSet(StringComparer.Ordinal);
        var covers = Model.named_modules().All(m => !segments.Contains(m.name[(m.name.LastIndexOf('.') + 1)..]) || guarded.Contains(m.name));
        return [.. (covers ? segments : guarded).Order(StringComparer.Ordinal)];
    }

    private GuardedModel RestoreTrainedFactors(Dictionary<string, Tensor> tensors)
    {
        using var noGrad = no_grad();
        foreach (var adapter in _adapters)
        {
            adapter.LoraA.copy_(tensors[$"{adapter.LayerName}.lora_A"]);
            adapter.LoraB.copy_(tensors[$"{adapter.LayerName}.lora_B"]);
        }

        return this;
    }

    private static AdapterConfig ReadConfig(string path)
    {
        if (!File.Exists(path))
        {
            throw new InvalidDataException($"'{path}' is missing: a GuardSpace adapter folder holds {AdapterFiles.StateFile} and {AdapterFiles.ConfigFile}.");
        }

        AdapterConfig? config;
        try
        {
            config = JsonSerializer.Deserialize<AdapterConfig>(File.ReadAllText(path), AdapterConfig.Json);
        }
        catch (JsonException ex)
        {
            throw new InvalidDataException($"'{path}' is not a valid GuardSpace adapter config: {ex.Message}", ex);
        }

        if (config is null || config.Format != AdapterConfig.FormatName)
        {
            throw new InvalidDataException($"'{path}' is not a GuardSpace adapter config (format '{config?.Format}').");
        }

        if (config.FormatVersion > AdapterConfig.CurrentVersion)
        {
            throw new InvalidDataException($"'{path}' has format version {config.FormatVersion}; this GuardSpace ({GuardSpaceInfo.Version}) reads up to {AdapterConfig.CurrentVersion}. Upgrade GuardSpace.");
        }

        if (config.FormatVersion < AdapterConfig.OldestReadableVersion)
        {
            throw new InvalidDataException($"'{path}' has format version {config.FormatVersion}, which no GuardSpace wrote.");
        }

        var problems = AdapterConfigValidator.Problems(config);
        if (problems.Count > 0)
        {
            throw new InvalidDataException($"'{path}' holds invalid values; nothing was changed:{Environment.NewLine}- {string.Join(Environment.NewLine + "- ", problems)}");
        }

        return config;
    }

    private static List<(string Name, Linear Layer)> CheckAgainstModel(Module model, AdapterConfig config, Dictionary<string, Tensor> tensors, string directory)
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
            var key = $"projector.{p.Name}.basis";
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
