using GuardSpace.Adapters;
using GuardSpace.Projection;
using GuardSpace.Targeting;

namespace GuardSpace.Serialization;

/// <summary>Between an attachment's options and state and the typed config file that records them, both ways.</summary>
internal static class AdapterConfigMapping
{
    /// <summary>The config that describes <paramref name="state"/> (without the tensor checksums, which the writer adds).</summary>
    public static AdapterConfig ConfigOf(AttachedAdapters state)
    {
        var options = state.Options;
        var adapters = state.List;
        var n = options.NullSpace;
        return new AdapterConfig
        {
            Method = options.Method.ToString(),
            Rank = options.Rank,
            Scale = options.Scale,
            Seed = options.Seed,
            BaseWeightsModified = options.Method.UsesDecomposition(),
            Targets = [.. adapters.Select(a => a.LayerName)],
            NullSpace = new NullSpaceConfig(n.Rule.ToString(), n.RelativeThreshold, n.AbsoluteFloor, n.AbsoluteThreshold, n.EnergyFraction, n.EmptyPolicy.ToString(), n.MinimumNullFraction),
            HarmfulDriftPenalty = options.EffectiveHarmfulDriftPenalty,
            HarmfulDriftFloor = options.HarmfulDriftFloor,
            TrackHarmfulDrift = state.Factors.Count > 0,
            Layers = [.. state.Layers.Select((l, i) => new LayerConfig(
                l.Name, l.OutFeatures, l.InFeatures, adapters[i].FrozenWeight.dtype.ToString(), l.Interception.ToString(), l.CovarianceGroup, l.Frozen,
                adapters[i].LoraA.dtype.ToString(), adapters[i].OriginalWeight, adapters[i].HarmfulFactor?.Name, adapters[i].HarmfulEnergy, adapters[i].HarmfulMeanEigenvalue))],
            Projectors = [.. state.Projectors.Select(h =>
            {
                var d = h.Projector.Diagnostics;
                var layers = adapters.Where(a => ReferenceEquals(a.Projector, h)).Select(a => a.LayerName).ToList();
                return new ProjectorConfig(d.Name, layers, d.InputWidth, d.NullDimension, d.StoresNullBasis, d.Rule.ToString(), d.Threshold, d.MaxEigenvalue, d.ProtectedEnergyFraction, d.FellBack);
            })],
        };
    }

    /// <summary>The attach options a config describes (its values were checked by <see cref="AdapterConfigValidator"/>).</summary>
    /// <exception cref="InvalidDataException">The values do not make valid options.</exception>
    public static GuardedLoraOptions OptionsOf(AdapterConfig config, string configPath)
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
