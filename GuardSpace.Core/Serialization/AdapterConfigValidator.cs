using System.Text.Json;
using GuardSpace.Adapters;
using GuardSpace.Internal;
using GuardSpace.Projection;

namespace GuardSpace.Serialization;

/// <summary>
/// Checks the values inside an adapter config that parsed as JSON: every problem is named by its JSON field
/// (<c>rank</c>, <c>layers[2].in_features</c>, <c>null_space.energy_fraction</c>, ...), so <c>Load</c> can report them all
/// in one <see cref="InvalidDataException"/> that names the file.
/// </summary>
internal static class AdapterConfigValidator
{
    public static List<string> Problems(AdapterConfig config)
    {
        var problems = new List<string>();
        CheckEnum<InitializationMethod>(config.Method, "method", problems);
        if (config.Rank < 1)
        {
            problems.Add($"rank is {config.Rank}; it must be at least 1");
        }

        if (!double.IsFinite(config.Scale) || config.Scale == 0)
        {
            problems.Add($"scale is {config.Scale}; it must be finite and non-zero");
        }

        var targets = config.Targets ?? [];
        if (config.Targets is null || targets.Count == 0)
        {
            problems.Add("targets is empty; a saved adapter guards at least one layer");
        }

        foreach (var duplicate in targets.GroupBy(t => t, StringComparer.Ordinal).Where(g => g.Count() > 1))
        {
            problems.Add($"targets names '{duplicate.Key}' {duplicate.Count()} times");
        }

        CheckLayers(config, targets, problems);
        CheckNullSpace(config.NullSpace, problems);
        CheckProjectors(config, targets, problems);
        return problems;
    }

    private static void CheckLayers(AdapterConfig config, IReadOnlyList<string> targets, List<string> problems)
    {
        if (config.Layers is null)
        {
            problems.Add("layers is missing");
            return;
        }

        for (var i = 0; i < config.Layers.Count; i++)
        {
            var layer = config.Layers[i];
            if (layer is null || string.IsNullOrWhiteSpace(layer.Name))
            {
                problems.Add($"layers[{i}] has no name");
                continue;
            }

            if (layer.OutFeatures < 1 || layer.InFeatures < 1)
            {
                problems.Add($"layers[{i}] ('{layer.Name}') is {layer.OutFeatures} x {layer.InFeatures}; both sizes must be at least 1");
            }
            else if (config.Rank > Math.Min(layer.OutFeatures, layer.InFeatures))
            {
                problems.Add($"rank {config.Rank} exceeds min(out_features, in_features) = {Math.Min(layer.OutFeatures, layer.InFeatures)} of layers[{i}] ('{layer.Name}')");
            }

            if (layer.OriginalWeight is { } fingerprint && fingerprint.Samples?.Count != WeightFingerprint.SampleCount)
            {
                problems.Add($"layers[{i}].original_weight.samples holds {fingerprint.Samples?.Count ?? 0} values, expected {WeightFingerprint.SampleCount}");
            }
        }

        var names = config.Layers.Where(l => l is not null).Select(l => l.Name).ToList();
        if (!names.Order(StringComparer.Ordinal).SequenceEqual(targets.Order(StringComparer.Ordinal), StringComparer.Ordinal))
        {
            problems.Add($"layers ({string.Join(", ", names)}) and targets ({string.Join(", ", targets)}) do not name the same layers");
        }
    }

    private static void CheckNullSpace(NullSpaceConfig? nullSpace, List<string> problems)
    {
        if (nullSpace is null)
        {
            problems.Add("null_space is missing");
            return;
        }

        CheckEnum<NullSpaceThresholdRule>(nullSpace.Rule, "null_space.rule", problems);
        CheckEnum<EmptyNullSpacePolicy>(nullSpace.EmptyPolicy, "null_space.empty_policy", problems);
        var options = new NullSpaceOptions
        {
            RelativeThreshold = nullSpace.RelativeThreshold,
            AbsoluteFloor = nullSpace.AbsoluteFloor,
            AbsoluteThreshold = nullSpace.AbsoluteThreshold,
            EnergyFraction = nullSpace.EnergyFraction,
        };
        var errors = new OptionErrors(nameof(NullSpaceOptions));
        options.AddErrors(errors);
        foreach (var (property, message) in errors.Errors)
        {
            problems.Add($"null_space.{JsonNamingPolicy.SnakeCaseLower.ConvertName(property)} {message}");
        }
    }

    private static void CheckProjectors(AdapterConfig config, IReadOnlyList<string> targets, List<string> problems)
    {
        if (config.Projectors is null)
        {
            problems.Add("projectors is missing");
            return;
        }

        var known = targets.ToHashSet(StringComparer.Ordinal);
        var owner = new Dictionary<string, string>(StringComparer.Ordinal);
        for (var i = 0; i < config.Projectors.Count; i++)
        {
            var p = config.Projectors[i];
            if (p is null || string.IsNullOrWhiteSpace(p.Name))
            {
                problems.Add($"projectors[{i}] has no name");
                continue;
            }

            CheckEnum<NullSpaceThresholdRule>(p.Rule, $"projectors[{i}].rule", problems);
            if (p.InputWidth < 1 || p.NullDimension < 0 || p.NullDimension > p.InputWidth)
            {
                problems.Add($"projectors[{i}] ('{p.Name}') has null_dimension {p.NullDimension} for input_width {p.InputWidth}; it must lie in [0, input_width]");
            }

            if (p.Layers is null || p.Layers.Count == 0)
            {
                problems.Add($"projectors[{i}] ('{p.Name}') lists no layers");
                continue;
            }

            foreach (var layer in p.Layers)
            {
                if (!known.Contains(layer))
                {
                    problems.Add($"projectors[{i}] ('{p.Name}') lists '{layer}', which is not among the targets");
                }
                else if (!owner.TryAdd(layer, p.Name))
                {
                    problems.Add($"layer '{layer}' belongs to two projectors ('{owner[layer]}' and '{p.Name}')");
                }
            }
        }
    }

    private static void CheckEnum<T>(string? value, string field, List<string> problems)
        where T : struct, Enum
    {
        if (value is null || !Enum.TryParse<T>(value, out var parsed) || !Enum.IsDefined(parsed))
        {
            problems.Add($"{field} '{value}' is not one of {string.Join(", ", Enum.GetNames<T>())}");
        }
    }
}
