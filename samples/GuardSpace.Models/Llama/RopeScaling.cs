using System.Text.Json.Nodes;

namespace GuardSpace.Models.Llama;

/// <summary>The rotary frequency scalings this decoder implements (<c>rope_scaling.rope_type</c>).</summary>
public enum RopeScalingType
{
    /// <summary><c>linear</c>: every frequency divided by the factor.</summary>
    Linear,

    /// <summary><c>llama3</c>: low frequencies divided by the factor, high ones kept, a smooth blend between (Llama 3.1 and later).</summary>
    Llama3,
}

/// <summary>Rotary frequency scaling (<c>rope_scaling</c> in <c>config.json</c>).</summary>
/// <param name="Type">The scaling rule.</param>
/// <param name="Factor">The scaling factor.</param>
/// <param name="LowFreqFactor">Llama 3: <c>low_freq_factor</c>.</param>
/// <param name="HighFreqFactor">Llama 3: <c>high_freq_factor</c>.</param>
/// <param name="OriginalMaxPositionEmbeddings">Llama 3: <c>original_max_position_embeddings</c>.</param>
public sealed record RopeScaling(RopeScalingType Type, double Factor, double LowFreqFactor = 1, double HighFreqFactor = 4, int OriginalMaxPositionEmbeddings = 8192)
{
    /// <summary>
    /// Applies the scaling to the base inverse frequencies <c>1 / theta^(2i/d)</c>. Llama 3 keeps wavelengths shorter than
    /// <c>original / high_freq_factor</c>, divides those longer than <c>original / low_freq_factor</c> by the factor, and
    /// interpolates linearly in <c>original / wavelength</c> between the two.
    /// </summary>
    public double[] Apply(double[] inverseFrequencies)
    {
        ArgumentNullException.ThrowIfNull(inverseFrequencies);
        if (Type == RopeScalingType.Linear)
        {
            return [.. inverseFrequencies.Select(f => f / Factor)];
        }

        var lowWavelength = OriginalMaxPositionEmbeddings / LowFreqFactor;
        var highWavelength = OriginalMaxPositionEmbeddings / HighFreqFactor;
        return [.. inverseFrequencies.Select(f =>
        {
            var wavelength = 2 * Math.PI / f;
            if (wavelength < highWavelength)
            {
                return f;
            }

            if (wavelength > lowWavelength)
            {
                return f / Factor;
            }

            var smooth = ((OriginalMaxPositionEmbeddings / wavelength) - LowFreqFactor) / (HighFreqFactor - LowFreqFactor);
            return ((1 - smooth) * f / Factor) + (smooth * f);
        })];
    }

    /// <summary>This scaling as the <c>rope_scaling</c> object of <c>config.json</c>.</summary>
    public JsonObject ToJson() => Type == RopeScalingType.Linear
        ? new JsonObject { ["rope_type"] = "linear", ["factor"] = Factor }
        : new JsonObject
        {
            ["rope_type"] = "llama3",
            ["factor"] = Factor,
            ["low_freq_factor"] = LowFreqFactor,
            ["high_freq_factor"] = HighFreqFactor,
            ["original_max_position_embeddings"] = OriginalMaxPositionEmbeddings,
        };
}
