using System.Text.Json;
using System.Text.Json.Nodes;
using GuardSpace.Storage;
using static TorchSharp.torch;

namespace GuardSpace.Models.Checkpoints;

/// <summary>
/// Hugging Face's weight layout, written: <c>model.safetensors</c>, or shards <c>model-0000i-of-0000n.safetensors</c> of
/// at most a given size (a larger tensor gets a shard of its own) with <c>model.safetensors.index.json</c>. Used by
/// <see cref="HfCheckpoint.Save"/> and the merged export, so both write the same layout.
/// </summary>
internal static class ShardedWeights
{
    /// <summary>
    /// Writes the tensors <paramref name="names"/> (in that order) to <paramref name="folder"/>; <paramref name="tensor"/>
    /// gives each one as it is to be stored (called inside a dispose scope per shard), <paramref name="bytes"/> its stored
    /// size. Returns the weight files written.
    /// </summary>
    public static IReadOnlyList<string> Write(string folder, IReadOnlyList<string> names, Func<string, long> bytes, long maxShardBytes, Func<string, Tensor> tensor)
    {
        var shards = Plan(names, bytes, maxShardBytes);
        var weightMap = new JsonObject();
        var files = new List<string>();
        for (var i = 0; i < shards.Count; i++)
        {
            var file = shards.Count == 1 ? HfCheckpoint.WeightsFile : $"model-{i + 1:D5}-of-{shards.Count:D5}.safetensors";
            using (var scope = NewDisposeScope())
            using (var noGrad = no_grad())
            {
                SafetensorsWriter.Write(Path.Combine(folder, file), shards[i].ToDictionary(n => n, tensor, StringComparer.Ordinal), new Dictionary<string, string> { ["format"] = "pt" });
            }

            foreach (var name in shards[i])
            {
                weightMap[name] = file;
            }

            files.Add(file);
        }

        if (shards.Count > 1)
        {
            var index = new JsonObject { ["metadata"] = new JsonObject { ["total_size"] = names.Sum(bytes) }, ["weight_map"] = weightMap };
            AtomicFileWriter.WriteAllText(Path.Combine(folder, HfCheckpoint.IndexFile), index.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
        }

        return files;
    }

    /// <summary>Groups the names, in order, into shards of at most <paramref name="maxBytes"/>; a larger tensor gets a shard of its own.</summary>
    internal static List<List<string>> Plan(IReadOnlyList<string> names, Func<string, long> bytes, long maxBytes)
    {
        var shards = new List<List<string>> { new() };
        long current = 0;
        foreach (var name in names)
        {
            var size = bytes(name);
            if (current > 0 && current + size > maxBytes)
            {
                shards.Add([]);
                current = 0;
            }

            shards[^1].Add(name);
            current += size;
        }

        return shards;
    }
}
