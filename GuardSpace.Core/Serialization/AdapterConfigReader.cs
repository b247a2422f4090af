using System.Text.Json;
using GuardSpace.Internal;

namespace GuardSpace.Serialization;

/// <summary>Reads and validates a GuardSpace adapter config, with an error that names the file and every invalid field.</summary>
internal static class AdapterConfigReader
{
    /// <summary>The config at <paramref name="path"/>, checked for its format, version and values.</summary>
    /// <exception cref="InvalidDataException">The file is missing, not a GuardSpace config, of an unknown version, or holds invalid values.</exception>
    public static AdapterConfig Read(string path)
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
            throw new InvalidDataException($"'{path}' has format version {config.FormatVersion}; this GuardSpace ({LibraryVersion.Value}) reads up to {AdapterConfig.CurrentVersion}. Upgrade GuardSpace.");
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
}
