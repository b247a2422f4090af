using System.Text.Json.Nodes;

namespace GuardSpace.Models.Llama.Config;

/// <summary>
/// Reads the rotary settings from either format: current transformers' <c>rope_parameters</c> (<c>rope_theta</c>,
/// <c>rope_type</c> and the type's fields in one object) or the older top-level <c>rope_theta</c> and <c>rope_scaling</c>.
/// Both may be present when they agree; a setting given twice with different values is refused, as are rope types and
/// rope fields this decoder does not implement.
/// </summary>
internal static class RopeSettingsReader
{
    /// <summary>The rope types <see cref="RotaryPositions"/> implements.</summary>
    public static IReadOnlyList<string> SupportedTypes { get; } = ["default", "linear", "llama3"];

    private static readonly string[] TypeKeys = ["rope_type", "type", "rope_theta", "partial_rotary_factor"];

    private static readonly Dictionary<string, string[]> FieldsByType = new(StringComparer.Ordinal)
    {
        ["default"] = [],
        ["linear"] = ["factor"],
        ["llama3"] = ["factor", "low_freq_factor", "high_freq_factor", "original_max_position_embeddings"],
    };

    /// <summary>The rotary base (10000 when no key gives one) and the scaling (null for <c>default</c>).</summary>
    public static (double Theta, RopeScaling? Scaling) Read(ConfigReader reader)
    {
        var parameters = reader.Child("rope_parameters");
        var scaling = reader.Child("rope_scaling");
        var fromParameters = parameters is null ? null : ReadObject(parameters);
        var fromScaling = scaling is null ? null : ReadObject(scaling);
        if (fromParameters is not null && fromScaling is not null && fromParameters.Value.Scaling != fromScaling.Value.Scaling)
        {
            throw Conflict(reader, "rope_parameters", "rope_scaling", "the rope type or its fields");
        }

        var thetas = new List<(string Key, double Value)>();
        if (reader.OptionalDouble("rope_theta") is { } top)
        {
            thetas.Add(("rope_theta", top));
        }

        if (fromParameters?.Theta is { } inParameters)
        {
            thetas.Add(("rope_parameters.rope_theta", inParameters));
        }

        if (fromScaling?.Theta is { } inScaling)
        {
            thetas.Add(("rope_scaling.rope_theta", inScaling));
        }

        var different = thetas.FirstOrDefault(t => t.Value != thetas[0].Value);
        if (different.Key is not null)
        {
            throw Conflict(reader, thetas[0].Key, different.Key, $"the rotary base ({thetas[0].Value:R} and {different.Value:R})");
        }

        return (thetas.Count > 0 ? thetas[0].Value : 10000, (fromParameters ?? fromScaling)?.Scaling);
    }

    private static (double? Theta, RopeScaling? Scaling)? ReadObject(ConfigReader rope)
    {
        if (rope.Root.FirstOrDefault(kv => kv.Value is JsonObject) is { Key: { } layerType })
        {
            throw new NotSupportedException(
                $"'{rope.Path}': '{rope.Name(layerType)}' gives rotary settings per layer type, which this decoder does not implement " +
                "(every layer uses one rotary setting). Use a model with a single rope_parameters object.");
        }

        var ropeType = rope.OptionalString("rope_type");
        var legacyType = rope.OptionalString("type");
        if (ropeType is not null && legacyType is not null && ropeType != legacyType)
        {
            throw Conflict(rope, rope.Name("rope_type"), rope.Name("type"), "the rope type");
        }

        var type = ropeType ?? legacyType ?? "default";
        if (!FieldsByType.TryGetValue(type, out var fields))
        {
            throw new NotSupportedException(
                $"'{rope.Path}': {rope.Name(ropeType is null && legacyType is not null ? "type" : "rope_type")} '{type}' is not implemented " +
                $"(supported rope types: {string.Join(", ", SupportedTypes)}). Use a checkpoint with a supported rope type, or add " +
                "its frequencies to samples/GuardSpace.Models/Llama/RopeScaling.cs.");
        }

        foreach (var (key, _) in rope.Root)
        {
            if (!TypeKeys.Contains(key) && !fields.Contains(key))
            {
                throw new NotSupportedException(
                    $"'{rope.Path}': '{rope.Name(key)}' is not a field of rope type '{type}' as implemented here " +
                    $"(it reads {string.Join(", ", TypeKeys.Concat(fields))}). Remove it if it is unused, or implement it.");
            }
        }

        if (rope.OptionalDouble("partial_rotary_factor") is { } partial && partial != 1.0)
        {
            throw new NotSupportedException(
                $"'{rope.Path}': '{rope.Name("partial_rotary_factor")}' = {partial:R} rotates only part of each head, which is not implemented (only 1 is).");
        }

        RopeScaling? scaling = type switch
        {
            "linear" => new RopeScaling(RopeScalingType.Linear, rope.RequiredDouble("factor")),
            "llama3" => new RopeScaling(
                RopeScalingType.Llama3,
                rope.RequiredDouble("factor"),
                rope.RequiredDouble("low_freq_factor"),
                rope.RequiredDouble("high_freq_factor"),
                rope.RequiredInt("original_max_position_embeddings")),
            _ => null,
        };
        return (rope.OptionalDouble("rope_theta"), scaling);
    }

    private static InvalidDataException Conflict(ConfigReader reader, string first, string second, string what) =>
        new($"'{reader.Path}': '{first}' and '{second}' both set {what} with different values. Keep one of them " +
            "(current transformers writes rope_parameters only).");
}
