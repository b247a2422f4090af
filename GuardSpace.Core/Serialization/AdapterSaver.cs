using System.Text.Json;
using GuardSpace.Adapters;
using GuardSpace.Storage;
using static TorchSharp.torch;

namespace GuardSpace.Serialization;

/// <summary>Writes an attachment's state file and config as one transaction.</summary>
internal static class AdapterSaver
{
    /// <summary>State-file key prefix of the harmful covariance factors (one per covariance group).</summary>
    public const string HarmfulFactorPrefix = "harmful_factor.";

    /// <summary>The state-file key of a projector's basis.</summary>
    public static string BasisKey(string projector) => $"projector.{projector}.basis";

    /// <summary>
    /// Writes <see cref="AdapterFiles.StateFile"/> (A, B, A0, B0 of every layer, every projector's basis through
    /// <see cref="Projection.INullSpaceProjector.ExportBasis"/>, the harmful factors) and <see cref="AdapterFiles.ConfigFile"/>
    /// (with a checksum of every tensor), both in full to temporary files first and then moved in together.
    /// </summary>
    /// <param name="state">The attachment.</param>
    /// <param name="directory">The target folder (created if needed).</param>
    /// <param name="beforeReplace">Called before each file is replaced (tests inject faults here).</param>
    public static void Save(AttachedAdapters state, string directory, Action<string>? beforeReplace = null)
    {
        using var scope = NewDisposeScope();
        var tensors = new Dictionary<string, Tensor>(StringComparer.Ordinal);
        foreach (var adapter in state.List)
        {
            tensors[$"{adapter.LayerName}.lora_A"] = adapter.LoraA.detach();
            tensors[$"{adapter.LayerName}.lora_B"] = adapter.LoraB.detach();
            tensors[$"{adapter.LayerName}.lora_A0"] = adapter.InitialA;
            tensors[$"{adapter.LayerName}.lora_B0"] = adapter.InitialB;
        }

        foreach (var handle in state.Projectors)
        {
            tensors[BasisKey(handle.Projector.Name)] = handle.Projector.ExportBasis();
        }

        foreach (var factor in state.Factors)
        {
            tensors[$"{HarmfulFactorPrefix}{factor.Name}"] = factor.Factor;
        }

        var config = AdapterConfigMapping.ConfigOf(state);
        Directory.CreateDirectory(directory);
        var statePath = Path.Combine(directory, AdapterFiles.StateFile);
        var checksums = new Dictionary<string, string>(StringComparer.Ordinal);
        using var transaction = new FileTransaction(beforeReplace);
        var metadata = new Dictionary<string, string> { ["format"] = "pt", ["guardspace_format"] = AdapterConfig.FormatName };
        transaction.Stage(statePath, SafetensorsWriter.WriteTemporary(statePath, tensors, metadata, state.Logger, checksums));
        transaction.StageText(Path.Combine(directory, AdapterFiles.ConfigFile), JsonSerializer.Serialize(config with { TensorChecksums = checksums }, AdapterConfig.Json));
        transaction.Commit();
    }
}
