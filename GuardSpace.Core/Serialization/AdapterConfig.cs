using System.Text.Json;
using System.Text.Json.Serialization;
using GuardSpace.Adapters;
using GuardSpace.Storage;

namespace GuardSpace.Serialization;

/// <summary>
/// The JSON config saved beside a GuardSpace adapter (<c>guardspace_config.json</c>; docs/adapter-format.md).
/// Version 2 added <see cref="TensorChecksums"/>, <see cref="LayerConfig.OriginalWeight"/> and
/// <see cref="LayerConfig.FactorDtype"/>; version 1 files (without them) still load, with the structural checks only.
/// Version 3 added the harmful-drift state (<see cref="HarmfulDriftPenalty"/>, <see cref="TrackHarmfulDrift"/>,
/// <see cref="LayerConfig.HarmfulFactor"/>, <see cref="LayerConfig.HarmfulEnergy"/>, <see cref="NullSpaceConfig.MinimumNullFraction"/>);
/// older files load without a penalty or monitor.
/// </summary>
internal sealed record AdapterConfig
{
    public const string FormatName = "guardspace-adapter";
    public const int CurrentVersion = 3;
    public const int OldestReadableVersion = 1;

    public string Format { get; init; } = FormatName;

    public int FormatVersion { get; init; } = CurrentVersion;

    public string LibraryVersion { get; init; } = Internal.LibraryVersion.Value;

    public required string Method { get; init; }

    public required int Rank { get; init; }

    public required double Scale { get; init; }

    public long Seed { get; init; }

    /// <summary>True when the frozen weights are residuals <c>W - s B0 A0</c> rather than the original weights.</summary>
    public required bool BaseWeightsModified { get; init; }

    public required IReadOnlyList<string> Targets { get; init; }

    public required NullSpaceConfig NullSpace { get; init; }

    public required IReadOnlyList<LayerConfig> Layers { get; init; }

    public required IReadOnlyList<ProjectorConfig> Projectors { get; init; }

    /// <summary>The drift penalty in effect when saved (version 3; 0 before).</summary>
    public double HarmfulDriftPenalty { get; init; }

    /// <summary>True when the harmful drift was tracked (version 3): the state file then holds the covariance factors.</summary>
    public bool TrackHarmfulDrift { get; init; }

    /// <summary>The drift penalty's covariance floor, <see cref="Adapters.GuardedLoraOptions.HarmfulDriftFloor"/> (version 3).</summary>
    public double HarmfulDriftFloor { get; init; }

    /// <summary>The <see cref="TensorChecksum"/> of every tensor in the state file, by key (version 2; null in version 1).</summary>
    public IReadOnlyDictionary<string, string>? TensorChecksums { get; init; }

    internal static readonly JsonSerializerOptions Json = new()
    {
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        WriteIndented = true,
        NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals,

        // A key written twice is ambiguous (which rank was trained?): refuse it rather than keep the last.
        AllowDuplicateProperties = false,
    };
}

/// <summary>The null-space options the adapter was fitted with.</summary>
internal sealed record NullSpaceConfig(string Rule, double RelativeThreshold, double AbsoluteFloor, double AbsoluteThreshold, double EnergyFraction, string EmptyPolicy, double MinimumNullFraction = 0);

/// <summary>
/// One guarded layer: <paramref name="Dtype"/> is the frozen weight's, <paramref name="FactorDtype"/> the factors' (version 2);
/// <paramref name="HarmfulFactor"/> names its harmful covariance factor in the state file (<c>harmful_factor.&lt;name&gt;</c>) and
/// <paramref name="HarmfulEnergy"/> is <c>||W C_h^(1/2)||_F^2</c> of the original weight (version 3).
/// </summary>
internal sealed record LayerConfig(
    string Name,
    long OutFeatures,
    long InFeatures,
    string Dtype,
    string Interception,
    string? Group,
    bool Frozen,
    string? FactorDtype = null,
    WeightFingerprint? OriginalWeight = null,
    string? HarmfulFactor = null,
    double HarmfulEnergy = 0,
    double HarmfulMeanEigenvalue = 0);

/// <summary>One projector (shared by the layers of a covariance group).</summary>
internal sealed record ProjectorConfig(
    string Name,
    IReadOnlyList<string> Layers,
    long InputWidth,
    long NullDimension,
    bool StoresNullBasis,
    string Rule,
    double Threshold,
    double MaxEigenvalue,
    double ProtectedEnergyFraction,
    bool FellBack);
