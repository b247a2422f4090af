using System.Buffers.Binary;
using System.Text.Json;
using System.Text.Json.Nodes;
using GuardSpace.Adapters;
using GuardSpace.Serialization;
using GuardSpace.Storage;
using GuardSpace.Tests.Adapters;
using TorchSharp;
using static TorchSharp.torch;

namespace GuardSpace.Tests.TestUtilities;

/// <summary>Saved adapters for the load tests, and ways to damage them the way disks, copies and users do.</summary>
internal static class SavedAdapters
{
    /// <summary>Attaches GuardSpace to a fresh <see cref="TinyTransformer"/>, trains 10 Adam steps and saves to a new temporary folder (the caller disposes it).</summary>
    public static TempDirectory TrainAndSave(int seed = 1)
    {
        using var scope = NewDisposeScope();
        var model = new TinyTransformer(seed: seed);
        using var guarded = GuardedModelInvariantTests.AttachGuardSpace(model);
        using var optimizer = guarded.WrapOptimizer(optim.Adam(guarded.TrainableParameters(), 1e-2));
        for (var step = 0; step < 10; step++)
        {
            GuardedModelInvariantTests.TrainStep(model, optimizer, step);
        }

        var directory = TempDirectory.Create("guardspace-saved-");
        try
        {
            guarded.Save(directory);
            return directory;
        }
        catch
        {
            directory.Dispose();
            throw;
        }
    }

    public static string StatePath(string directory) => Path.Combine(directory, AdapterFiles.StateFile);

    public static string ConfigPath(string directory) => Path.Combine(directory, AdapterFiles.ConfigFile);

    /// <summary>The byte range [begin, end) of a tensor's data in a safetensors file.</summary>
    public static (long Begin, long End) DataRange(string file, string key)
    {
        var bytes = File.ReadAllBytes(file);
        var headerLength = (long)BinaryPrimitives.ReadUInt64LittleEndian(bytes);
        using var header = JsonDocument.Parse(bytes.AsMemory(8, (int)headerLength));
        var offsets = header.RootElement.GetProperty(key).GetProperty("data_offsets");
        var start = 8 + headerLength;
        return (start + offsets[0].GetInt64(), start + offsets[1].GetInt64());
    }

    /// <summary>Flips every bit of <paramref name="count"/> bytes in the middle of a tensor's data (the header stays valid).</summary>
    public static void FlipBytes(string file, string key, int count = 4)
    {
        var (begin, end) = DataRange(file, key);
        var bytes = File.ReadAllBytes(file);
        var middle = begin + ((end - begin) / 2);
        for (var i = 0; i < count; i++)
        {
            bytes[middle + i] ^= 0xFF;
        }

        File.WriteAllBytes(file, bytes);
    }

    /// <summary>Rewrites the config as format version 1 wrote it: no checksums, no fingerprints, no factor dtypes.</summary>
    public static void DowngradeToVersion1(string directory)
    {
        EditConfig(directory, config =>
        {
            config["format_version"] = 1;
            config.Remove("tensor_checksums");
            foreach (var layer in config["layers"]!.AsArray())
            {
                layer!.AsObject().Remove("factor_dtype");
                layer.AsObject().Remove("original_weight");
            }
        });
    }

    public static void EditConfig(string directory, Action<JsonObject> edit)
    {
        var path = ConfigPath(directory);
        var config = JsonNode.Parse(File.ReadAllText(path))!.AsObject();
        edit(config);
        File.WriteAllText(path, config.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
    }

    /// <summary>Replaces one tensor of the state file (keeping every other one), as a tool that edits the file would.</summary>
    public static void ReplaceTensor(string directory, string key, Func<Tensor, Tensor> change)
    {
        var path = StatePath(directory);
        var (tensors, metadata) = SafetensorsReader.ReadAll(path);
        tensors[key] = change(tensors[key]).contiguous();
        SafetensorsWriter.Write(path, tensors, metadata);
    }
}
