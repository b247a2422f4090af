using System.Text.Json;
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
    /// <summary>
    /// Saves the adapter state to <paramref name="directory"/>: <see cref="AdapterFiles.StateFile"/> (A, B, the initial
    /// A0 and B0, and every projector basis) and <see cref="AdapterFiles.ConfigFile"/> (method, rank, targets,
    /// thresholds, library version, whether the base weights were changed). Files are replaced atomically.
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

        var n = Options.NullSpace;
        var config = new AdapterConfig
        {
            Method = Options.Method.ToString(),
            Rank = Options.Rank,
            Scale = Options.Scale,
            Seed = Options.Seed,
            BaseWeightsModified = Options.Method.UsesDecomposition(),
            Targets = [.. _adapters.Select(a => a.LayerName)],
            NullSpace = new NullSpaceConfig(n.Rule.ToString(), n.RelativeThreshold, n.AbsoluteFloor, n.AbsoluteThreshold, n.EnergyFraction, n.EmptyPolicy.ToString()),
            Layers = [.. Layers.Select((l, i) => new LayerConfig(l.Name, l.OutFeatures, l.InFeatures, _adapters[i].FrozenWeight.dtype.ToString(), l.Interception.ToString(), l.CovarianceGroup, l.Frozen))],
            Projectors = [.. _projectors.Select(h =>
            {
                var d = h.Projector.Diagnostics;
                var layers = _adapters.Where(a => ReferenceEquals(a.Projector, h)).Select(a => a.LayerName).ToList();
                return new ProjectorConfig(d.Name, layers, d.InputWidth, d.NullDimension, d.StoresNullBasis, d.Rule.ToString(), d.Threshold, d.MaxEigenvalue, d.ProtectedEnergyFraction, d.FellBack);
            })],
        };

        Directory.CreateDirectory(directory);
        SafetensorsFile.Write(Path.Combine(directory, AdapterFiles.StateFile), tensors, new Dictionary<string, string> { ["format"] = "pt", ["guardspace_format"] = AdapterConfig.FormatName }, _logger);
        AtomicFile.WriteAllText(Path.Combine(directory, AdapterFiles.ConfigFile), JsonSerializer.Serialize(config, AdapterConfig.Json));
    }

    /// <summary>
    /// Attaches a saved adapter to <paramref name="model"/>, which must hold the ORIGINAL weights the adapter was made
    /// from (the frozen residuals are recomputed as <c>W - s B0 A0</c>). Checks every name and shape against the model
    /// first and reports everything that does not match; like <see cref="Attach"/>, it changes nothing on failure.
    /// </summary>
    /// <exception cref="InvalidDataException">A file is missing, truncated or corrupted.</exception>
    /// <exception cref="ArgumentException">The adapter does not fit the model (the message lists every mismatch).</exception>
    public static GuardedModel Load(Module model, string directory, ILoggerFactory? loggerFactory = null)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentException.ThrowIfNullOrWhiteSpace(directory);
        var logger = loggerFactory?.CreateLogger("GuardSpace") ?? NullLogger.Instance;
        var config = ReadConfig(Path.Combine(directory, AdapterFiles.ConfigFile));
        var statePath = Path.Combine(directory, AdapterFiles.StateFile);
        if (!File.Exists(statePath))
        {
            throw new InvalidDataException($"'{statePath}' is missing: a GuardSpace adapter folder holds {AdapterFiles.StateFile} and {AdapterFiles.ConfigFile}.");
        }

        var (tensors, _) = SafetensorsFile.Read(statePath, logger: logger);
        var projectors = new List<ProjectorHandle>();
        var built = new List<GuardedLoraAdapter>();
        try
        {
            var options = new GuardedLoraOptions
            {
                Method = ParseEnum<InitializationMethod>(config.Method, "method", statePath),
                Rank = config.Rank,
                Scale = config.Scale,
                Seed = config.Seed,
                Targets = TargetModules.ExactNames([.. config.Targets]),
                NullSpace = new NullSpaceOptions
                {
                    Rule = ParseEnum<NullSpaceThresholdRule>(config.NullSpace.Rule, "null_space.rule", statePath),
                    RelativeThreshold = config.NullSpace.RelativeThreshold,
                    AbsoluteFloor = config.NullSpace.AbsoluteFloor,
                    AbsoluteThreshold = config.NullSpace.AbsoluteThreshold,
                    EnergyFraction = config.NullSpace.EnergyFraction,
                    EmptyPolicy = ParseEnum<EmptyNullSpacePolicy>(config.NullSpace.EmptyPolicy, "null_space.empty_policy", statePath),
                },
            };
            options.Validate();
            var targets = CheckAgainstModel(model, config, tensors, directory);

            var projectorOf = new Dictionary<string, ProjectorHandle>(StringComparer.Ordinal);
            foreach (var p in config.Projectors)
            {
                var diagnostics = new NullSpaceDiagnostics(p.Name, p.InputWidth, p.NullDimension, ParseEnum<NullSpaceThresholdRule>(p.Rule, "projectors.rule", statePath),
                    p.Threshold, p.MaxEigenvalue, p.ProtectedEnergyFraction, p.StoresNullBasis, p.FellBack);
                var handle = new ProjectorHandle(NullSpaceProjector.FromBasis(tensors[$"projector.{p.Name}.basis"], diagnostics));
                projectors.Add(handle);
                p.Layers.ToList().ForEach(l => projectorOf[l] = handle);
            }

            var groups = config.Layers.ToDictionary(l => l.Name, l => l.Group, StringComparer.Ordinal);
            return AttachCore(model, options, targets, projectorOf, projectors, built, logger, null, CancellationToken.None, (_, name, layer, _) =>
            {
                var w = layer.weight!;
                var a = tensors[$"{name}.lora_A"].to(w.dtype, w.device);
                var b = tensors[$"{name}.lora_B"].to(w.dtype, w.device);
                var a0 = tensors[$"{name}.lora_A0"];
                var b0 = tensors[$"{name}.lora_B0"];
                Tensor? residual = null;
                if (config.BaseWeightsModified)
                {
                    using var noGrad = no_grad();
                    var delta = b0.to(ScalarType.Float64, w.device).mm(a0.to(ScalarType.Float64, w.device)) * config.Scale;
                    residual = (w.detach().to_type(ScalarType.Float64) - delta).to_type(w.dtype);
                }

                return new LayerInit(a0.to(w.dtype, w.device), b0.to(w.dtype, w.device), residual, null, groups[name]);
            }).RestoreTrainedFactors(tensors);
        }
        catch
        {
            ReleaseAfterFailure(built);
            projectors.ForEach(p => p.Dispose());
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

    /// <summary>
    /// Exports the fine-tune as a plain LoRA delta relative to the ORIGINAL weights, in PEFT's layout, so any LoRA runtime
    /// can apply it to the original checkpoint: <c>W_final - W = [s B, -s B0] [A; A0]</c> (rank 2r; rank r when B0 = 0).
    /// Writes <see cref="AdapterFiles.PeftWeightsFile"/> with keys <c>base_model.model.&lt;path&gt;.lora_A.weight</c> /
    /// <c>.lora_B.weight</c> and <see cref="AdapterFiles.PeftConfigFile"/> (lora_alpha = r, so PEFT's scaling is 1).
    /// </summary>
    public void ExportPeft(string directory)
    {
        ThrowIfDisposed();
        ArgumentException.ThrowIfNullOrWhiteSpace(directory);
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var tensors = new Dictionary<string, Tensor>(StringComparer.Ordinal);
        var withInitial = _adapters.Any(a => a.InitialB.abs().max().ToDouble() != 0);
        foreach (var adapter in _adapters)
        {
            var s = adapter.Scale;
            var a = withInitial ? cat([adapter.LoraA.detach(), adapter.InitialA], 0) : adapter.LoraA.detach();
            var b = withInitial ? cat([adapter.LoraB.detach() * s, adapter.InitialB * -s], 1) : adapter.LoraB.detach() * s;
            tensors[$"{AdapterFiles.PeftKeyPrefix}{adapter.LayerName}.lora_A.weight"] = a.contiguous();
            tensors[$"{AdapterFiles.PeftKeyPrefix}{adapter.LayerName}.lora_B.weight"] = b.contiguous();
        }

        var rank = withInitial ? 2 * Options.Rank : Options.Rank;
        var config = new Dictionary<string, object?>
        {
            ["peft_type"] = "LORA",
            ["r"] = rank,
            ["lora_alpha"] = rank,
            ["target_modules"] = _adapters.Select(a => a.LayerName).ToArray(),
            ["lora_dropout"] = 0.0,
            ["bias"] = "none",
            ["fan_in_fan_out"] = false,
            ["init_lora_weights"] = true,
            ["use_rslora"] = false,
            ["inference_mode"] = true,
            ["base_model_name_or_path"] = null,
            ["task_type"] = null,
            ["guardspace"] = new Dictionary<string, object?>
            {
                ["version"] = GuardSpaceInfo.Version,
                ["method"] = Options.Method.ToString(),
                ["rank"] = Options.Rank,
                ["scale"] = Options.Scale,
                ["delta"] = withInitial ? "W_final - W_original = [s B, -s B0] [A; A0]" : "W_final - W_original = (s B) A",
            },
        };

        Directory.CreateDirectory(directory);
        SafetensorsFile.Write(Path.Combine(directory, AdapterFiles.PeftWeightsFile), tensors, new Dictionary<string, string> { ["format"] = "pt" }, _logger);
        AtomicFile.WriteAllText(Path.Combine(directory, AdapterFiles.PeftConfigFile), JsonSerializer.Serialize(config, AdapterConfig.Json));
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

        return config;
    }

    private static T ParseEnum<T>(string value, string field, string path)
        where T : struct, Enum =>
        Enum.TryParse<T>(value, out var parsed) && Enum.IsDefined(parsed)
            ? parsed
            : throw new InvalidDataException($"'{path}': {field} '{value}' is not one of {string.Join(", ", Enum.GetNames<T>())}.");

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
