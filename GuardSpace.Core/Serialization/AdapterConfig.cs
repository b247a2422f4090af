using System.Text.Json;
using System.Text.Json.Serialization;

namespace GuardSpace.Serialization;

/// <summary>The JSON config saved beside a GuardSpace adapter (<c>guardspace_config.json</c>; docs/adapter-format.md).</summary>
internal sealed record AdapterConfig
{
    public const string FormatName = "guardspace-adapter";
    public const int CurrentVersion = 1;

    public string Format { get; init; } = FormatName;

    public int FormatVersion { get; init; } = CurrentVersion;

    public string LibraryVersion { get; init; } = GuardSpaceInfo.Version;

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

    internal static readonly JsonSerializerOptions Json = new()
    {
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        WriteIndented = true,
        NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals,
    };
}

/// <summary>The null-space options the adapter was fitted with.</summary>
internal sealed record NullSpaceConfig(string Rule, double RelativeThreshold, double AbsoluteFloor, double AbsoluteThreshold, double EnergyFraction, string EmptyPolicy);

/// <summary>One guarded layer.</summary>
internal sealed record LayerConfig(string Name, long OutFeatures, long InFeatures, string Dtype, string Interception, string? Group, bool Frozen);

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
