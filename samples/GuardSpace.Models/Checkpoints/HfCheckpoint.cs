using System.Text.Json;
using System.Text.Json.Nodes;
using GuardSpace.Models.Internal;
using GuardSpace.Models.Llama;
using GuardSpace.Storage;
using static TorchSharp.torch;

namespace GuardSpace.Models.Checkpoints;

/// <summary>
/// Hugging Face checkpoint folders: <c>config.json</c> plus the weights, either one <c>model.safetensors</c> or shards
/// named by <c>model.safetensors.index.json</c> (its <c>weight_map</c> maps each tensor name to a shard file).
/// </summary>
public static class HfCheckpoint
{
    /// <summary>The config file.</summary>
    public const string ConfigFile = "config.json";

    /// <summary>The single weights file.</summary>
    public const string WeightsFile = "model.safetensors";

    /// <summary>The shard index.</summary>
    public const string IndexFile = "model.safetensors.index.json";

    // transformers' save_pretrained marks PyTorch weights this way; its loader warns about files without it.

    /// <summary>
    /// Loads the Llama-family checkpoint in <paramref name="directory"/> into a new <see cref="LlamaForCausalLM"/> of
    /// <paramref name="dtype"/> on <paramref name="device"/> (F32, F16, BF16 and F64 files, converted on the way).
    /// Every tensor is checked against the shapes <c>config.json</c> implies before anything is copied, and all problems
    /// are reported together.
    /// </summary>
    /// <exception cref="DirectoryNotFoundException">The folder does not exist.</exception>
    /// <exception cref="FileNotFoundException">config.json, the weights, or a shard named by the index is missing.</exception>
    /// <exception cref="NotSupportedException">The architecture, a rotary scaling or a tensor dtype is not supported (integer, that is quantised, weights).</exception>
    /// <exception cref="InvalidDataException">A file is malformed (including a dtype name <see cref="SafetensorsReader"/> does not know, such as F8_E4M3), or tensors are missing, unexpected or of the wrong shape (the message lists each with its file).</exception>
    public static LlamaForCausalLM Load(string directory, ScalarType dtype = ScalarType.Float32, Device? device = null)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(directory);
        if (!Directory.Exists(directory))
        {
            throw new DirectoryNotFoundException($"Model folder '{directory}' does not exist.");
        }

        var config = LlamaConfig.FromFile(Path.Combine(directory, ConfigFile));
        var (files, location) = OpenWeights(directory);
        try
        {
            var model = new LlamaForCausalLM(config, dtype, device);
            try
            {
                var targets = model.state_dict();
                CheckTensors(config, targets, files, location, directory);
                using var noGrad = no_grad();
                foreach (var reader in files.Values)
                {
                    foreach (var entry in reader.Entries.Values.Where(e => location.TryGetValue(e.Name, out var f) && f == reader.Path && targets.ContainsKey(e.Name)).OrderBy(e => e.Begin))
                    {
                        using var values = reader.Read(entry.Name);
                        targets[entry.Name].copy_(values);
                    }
                }

                return model;
            }
            catch
            {
                model.Dispose();
                throw;
            }
        }
        finally
        {
            foreach (var reader in files.Values)
            {
                reader.Dispose();
            }
        }
    }

    /// <summary>
    /// Writes <paramref name="model"/> to <paramref name="directory"/>: <c>config.json</c> and <c>model.safetensors</c>, or,
    /// when <paramref name="maxShardBytes"/> is given and the weights are larger, shards
    /// <c>model-0000i-of-0000n.safetensors</c> of at most that size (a single larger tensor gets a shard of its own) and
    /// <c>model.safetensors.index.json</c>. Files are written through temporary files; a stale single file or index of the
    /// other layout is removed so the folder stays unambiguous.
    /// </summary>
    public static void Save(LlamaForCausalLM model, string directory, long? maxShardBytes = null)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentException.ThrowIfNullOrWhiteSpace(directory);
        if (maxShardBytes is <= 0)
        {
            throw new ArgumentOutOfRangeException(nameof(maxShardBytes), maxShardBytes, "The shard size must be positive.");
        }

        Directory.CreateDirectory(directory);
        var tensors = model.state_dict();
        WriteText(Path.Combine(directory, ConfigFile), (model.Config with { TorchDtype = TorchDtypeName(tensors.Values.First().dtype) }).ToJson());
        var names = tensors.Keys.Order(StringComparer.Ordinal).ToList();
        var files = ShardedWeights.Write(directory, names, n => tensors[n].NumberOfElements * tensors[n].ElementSize, maxShardBytes ?? long.MaxValue, n => tensors[n]);

        // The other layout's files would make the folder ambiguous: a loader prefers the index over model.safetensors.
        File.Delete(Path.Combine(directory, files.Count == 1 ? IndexFile : WeightsFile));
    }

    /// <summary>Hugging Face's <c>torch_dtype</c> name of <paramref name="type"/>.</summary>
    public static string TorchDtypeName(ScalarType type) => type switch
    {
        ScalarType.Float64 => "float64",
        ScalarType.Float16 => "float16",
        ScalarType.BFloat16 => "bfloat16",
        _ => "float32",
    };

    /// <summary>Opens the weights: the single file when present, else every shard the index names. Returns the readers by path and each tensor's file.</summary>
    private static (Dictionary<string, SafetensorsReader> Files, Dictionary<string, string> Location) OpenWeights(string directory)
    {
        var single = Path.Combine(directory, WeightsFile);
        var indexPath = Path.Combine(directory, IndexFile);
        var files = new Dictionary<string, SafetensorsReader>(StringComparer.Ordinal);
        var location = new Dictionary<string, string>(StringComparer.Ordinal);
        try
        {
            if (File.Exists(single))
            {
                var reader = SafetensorsReader.Open(single);
                files[single] = reader;
                foreach (var name in reader.Entries.Keys)
                {
                    location[name] = single;
                }

                return (files, location);
            }

            if (!File.Exists(indexPath))
            {
                var pickles = Directory.GetFiles(directory, "*.bin").Concat(Directory.GetFiles(directory, "*.pth")).Select(Path.GetFileName).ToList();
                throw new FileNotFoundException(
                    $"'{directory}' has neither {WeightsFile} nor {IndexFile}." +
                    (pickles.Count > 0
                        ? $" It holds PyTorch pickles ({string.Join(", ", pickles)}), which are not read here: convert them to safetensors (for example save_pretrained(..., safe_serialization=True))."
                        : " Point --model at a Hugging Face model folder."),
                    single);
            }

            var weightMap = ReadWeightMap(indexPath);
            foreach (var group in weightMap.GroupBy(kv => kv.Value, StringComparer.Ordinal))
            {
                var shard = Path.Combine(directory, group.Key);
                if (!File.Exists(shard))
                {
                    var keys = group.Select(kv => kv.Key).Order(StringComparer.Ordinal).ToList();
                    throw new FileNotFoundException(
                        $"'{indexPath}' maps '{keys[0]}'{(keys.Count > 1 ? $" and {keys.Count - 1} more tensors" : string.Empty)} to shard '{group.Key}', which is missing from '{directory}'. Download the complete checkpoint.",
                        shard);
                }

                var reader = SafetensorsReader.Open(shard);
                files[reader.Path] = reader;
                foreach (var (name, _) in group)
                {
                    if (!reader.Entries.ContainsKey(name))
                    {
                        throw new InvalidDataException($"'{indexPath}' maps '{name}' to '{group.Key}', but '{shard}' has no such tensor. The index and the shards are from different checkpoints.");
                    }

                    location[name] = reader.Path;
                }
            }

            return (files, location);
        }
        catch
        {
            foreach (var reader in files.Values)
            {
                reader.Dispose();
            }

            throw;
        }
    }

    private static Dictionary<string, string> ReadWeightMap(string indexPath)
    {
        try
        {
            var map = JsonFiles.ReadObject(indexPath)["weight_map"] as JsonObject
                ?? throw new InvalidDataException($"'{indexPath}' has no 'weight_map' object.");
            return map.ToDictionary(kv => kv.Key, kv => ShardName(indexPath, kv.Key, kv.Value?.GetValue<string>()), StringComparer.Ordinal);
        }
        catch (Exception ex) when (ex is JsonException or InvalidOperationException or FormatException)
        {
            throw new InvalidDataException($"'{indexPath}' is not a valid shard index: {ex.Message}", ex);
        }
    }

    /// <summary>A shard must be a plain file name beside the index (no folder, no path characters), never a path out of the folder.</summary>
    private static string ShardName(string indexPath, string tensor, string? shard)
    {
        const int MaxFileName = 255;
        if (shard is null || shard.Length is 0 or > MaxFileName || shard is "." or ".." || shard.IndexOfAny(['/', '\\', '\0']) >= 0
            || shard.IndexOfAny(Path.GetInvalidFileNameChars()) >= 0 || !shard.EndsWith(".safetensors", StringComparison.Ordinal))
        {
            var shown = shard is null ? "null" : $"'{(shard.Length > 80 ? shard[..80] + "..." : shard)}'";
            throw new InvalidDataException($"'{indexPath}': weight_map['{tensor}'] is {shown}, not the file name of a .safetensors shard in the same folder. The index is damaged: download it again.");
        }

        return shard;
    }

    private static void CheckTensors(LlamaConfig config, Dictionary<string, Tensor> targets, Dictionary<string, SafetensorsReader> files, Dictionary<string, string> location, string directory)
    {
        var problems = new List<string>();
        var dtypeProblems = new List<string>();
        foreach (var (name, target) in targets.OrderBy(kv => kv.Key, StringComparer.Ordinal))
        {
            if (!location.TryGetValue(name, out var file))
            {
                problems.Add($"tensor '{name}' is missing (looked in {string.Join(", ", files.Keys.Select(Path.GetFileName))})");
                continue;
            }

            var entry = files[file].Entries[name];
            if (!entry.Shape.SequenceEqual(target.shape))
            {
                problems.Add($"'{Path.GetFileName(file)}': tensor '{name}' has shape {entry.ShapeText}, but {ConfigFile} implies [{string.Join(", ", target.shape)}] ({ShapeOrigin(config, name)})");
            }

            if (!entry.IsFloatingPoint)
            {
                dtypeProblems.Add($"'{Path.GetFileName(file)}': tensor '{name}' has dtype {entry.Dtype}; only F32, F16, BF16 and F64 weights are supported (quantised checkpoints are not)");
            }
        }

        foreach (var (name, file) in location.OrderBy(kv => kv.Key, StringComparer.Ordinal))
        {
            var ignorable = name.EndsWith("rotary_emb.inv_freq", StringComparison.Ordinal) || (config.TieWordEmbeddings && name == "lm_head.weight");
            if (!targets.ContainsKey(name) && !ignorable)
            {
                problems.Add($"'{Path.GetFileName(file)}': tensor '{name}' has no place in a {config.Architecture} with {ConfigFile}'s sizes (num_hidden_layers = {config.NumHiddenLayers}, tie_word_embeddings = {config.TieWordEmbeddings.ToString().ToLowerInvariant()}, attention_bias = {config.AttentionBias.ToString().ToLowerInvariant()})");
            }
        }

        if (dtypeProblems.Count > 0 && problems.Count == 0)
        {
            throw new NotSupportedException($"The checkpoint in '{directory}' cannot be loaded:{Environment.NewLine}- {string.Join(Environment.NewLine + "- ", dtypeProblems)}");
        }

        problems.AddRange(dtypeProblems);
        if (problems.Count > 0)
        {
            var shown = problems.Take(20).ToList();
            var more = problems.Count > shown.Count ? $"{Environment.NewLine}- ... and {problems.Count - shown.Count} more" : string.Empty;
            throw new InvalidDataException(
                $"The checkpoint in '{directory}' does not match its {ConfigFile}; nothing was loaded:{Environment.NewLine}- {string.Join(Environment.NewLine + "- ", shown)}{more}");
        }
    }

    /// <summary>Which config.json fields set the expected shape of <paramref name="name"/>, for the error message.</summary>
    private static string ShapeOrigin(LlamaConfig c, string name)
    {
        var kv = $"num_key_value_heads = {c.KeyValueHeads}, head_dim = {c.HeadDimension}, hidden_size = {c.HiddenSize}";
        return name switch
        {
            _ when name.Contains("k_proj", StringComparison.Ordinal) || name.Contains("v_proj", StringComparison.Ordinal) => kv,
            _ when name.Contains("q_proj", StringComparison.Ordinal) || name.Contains("o_proj", StringComparison.Ordinal) => $"num_attention_heads = {c.NumAttentionHeads}, head_dim = {c.HeadDimension}, hidden_size = {c.HiddenSize}",
            _ when name.Contains("mlp.", StringComparison.Ordinal) => $"intermediate_size = {c.IntermediateSize}, hidden_size = {c.HiddenSize}",
            _ when name.Contains("embed_tokens", StringComparison.Ordinal) || name.StartsWith("lm_head", StringComparison.Ordinal) => $"vocab_size = {c.VocabSize}, hidden_size = {c.HiddenSize}",
            _ => $"hidden_size = {c.HiddenSize}",
        };
    }

    private static void WriteText(string path, string text) =>
        AtomicFileWriter.WriteAllText(path, text);
}
