using System.Text.Json;
using GuardSpace.Adapters;
using GuardSpace.Internal;
using GuardSpace.Storage;
using TorchSharp;
using static TorchSharp.torch;

namespace GuardSpace.Serialization;

/// <summary>Writes the fine-tune as a plain LoRA delta relative to the original weights, in PEFT's layout.</summary>
internal static class PeftExporter
{
    private const string DeltaDescription =
        "W_final - W_original = B_exp A_exp per layer: [s B, -s B0] [A; A0] (rank 2r) when B0 != 0, (s B) A (rank r) when B0 = 0, zero B when the layer did not change";

    /// <summary>
    /// Per layer, <c>W_final - W = B_exp A_exp</c> with <c>[s B, -s B0] [A; A0]</c> (rank 2r) where the initial factors are
    /// non-zero, <c>(s B) A</c> (rank r) where B0 = 0, and a zero B at rank r for a layer that did not change. Writes
    /// <see cref="AdapterFiles.PeftWeightsFile"/> and <see cref="AdapterFiles.PeftConfigFile"/> atomically.
    /// </summary>
    public static void Export(AttachedAdapters state, string directory, PeftExportOptions? options)
    {
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var tensors = new Dictionary<string, Tensor>(StringComparer.Ordinal);
        var ranks = new Dictionary<string, int>(StringComparer.Ordinal);
        foreach (var adapter in state.List)
        {
            var (a, b) = Delta(adapter);
            tensors[$"{AdapterFiles.PeftKeyPrefix}{adapter.LayerName}.lora_A.weight"] = a.contiguous();
            tensors[$"{AdapterFiles.PeftKeyPrefix}{adapter.LayerName}.lora_B.weight"] = b.contiguous();
            ranks[adapter.LayerName] = (int)a.shape[0];
        }

        Directory.CreateDirectory(directory);
        SafetensorsWriter.Write(Path.Combine(directory, AdapterFiles.PeftWeightsFile), tensors, new Dictionary<string, string> { ["format"] = "pt" }, state.Logger);
        AtomicFileWriter.WriteAllText(Path.Combine(directory, AdapterFiles.PeftConfigFile), JsonSerializer.Serialize(ConfigOf(state, ranks, options), AdapterConfig.Json));
    }

    /// <summary>The exported factors (A_exp, B_exp) of one adapter.</summary>
    private static (Tensor A, Tensor B) Delta(GuardedLoraAdapter adapter)
    {
        var s = adapter.Scale;
        var (a, b) = (adapter.LoraA.detach(), adapter.LoraB.detach());
        if (adapter.InitialB.abs().max().ToDouble() == 0)
        {
            return (a, b * s);
        }

        if (a.eq(adapter.InitialA).all().item<bool>() && b.eq(adapter.InitialB).all().item<bool>())
        {
            return (a, zeros_like(b)); // unchanged: the delta is exactly zero
        }

        return (cat([a, adapter.InitialA], 0), cat([b * s, adapter.InitialB * -s], 1));
    }

    private static PeftAdapterConfig ConfigOf(AttachedAdapters state, Dictionary<string, int> ranks, PeftExportOptions? options)
    {
        var rank = ranks.Values.GroupBy(r => r).OrderByDescending(g => g.Count()).ThenBy(g => g.Key).Select(g => g.Key).FirstOrDefault(state.Options.Rank);
        var modulePaths = state.Model.named_modules().Select(m => m.name).Where(n => n.Length > 0).ToList();
        var others = ranks.Where(kv => kv.Value != rank).OrderBy(kv => kv.Key, StringComparer.Ordinal).ToList();
        var keys = PeftPatternKeys.For(others.Select(kv => kv.Key), modulePaths);
        var pattern = others.ToDictionary(kv => keys[kv.Key], kv => kv.Value, StringComparer.Ordinal);
        return new PeftAdapterConfig
        {
            R = rank,
            LoraAlpha = rank,
            RankPattern = pattern,
            AlphaPattern = pattern,
            TargetModules = TargetModules(state, modulePaths),
            BaseModelNameOrPath = options?.BaseModelNameOrPath,
            TaskType = options?.TaskType,
            Guardspace = new PeftGuardSpaceInfo(LibraryVersion.Value, state.Options.Method.ToString(), state.Options.Rank, state.Options.Scale, DeltaDescription),
        };
    }

    /// <summary>
    /// <c>target_modules</c> as PEFT writes it: the layers' last path segments (<c>q_proj</c>, ...) when they pick exactly the
    /// guarded layers (PEFT matches a name that equals a segment or ends with "." + segment); otherwise the full paths.
    /// </summary>
    private static string[] TargetModules(AttachedAdapters state, List<string> modulePaths)
    {
        var guarded = state.List.Select(a => a.LayerName).ToHashSet(StringComparer.Ordinal);
        var segments = guarded.Select(n => n[(n.LastIndexOf('.') + 1)..]).ToHashSet(StringComparer.Ordinal);
        var covers = modulePaths.All(m => !segments.Contains(m[(m.LastIndexOf('.') + 1)..]) || guarded.Contains(m));
        return [.. (covers ? segments : guarded).Order(StringComparer.Ordinal)];
    }
}
