using System.Text;
using GuardSpace.Models.Checkpoints;
using GuardSpace.Models.Llama;
using static TorchSharp.torch;

namespace GuardSpace.Models.Export;

/// <summary>
/// Writes a fine-tuned Llama-family model, with its adapters merged, as a Hugging Face checkpoint folder that
/// <c>from_pretrained</c> (and <see cref="HfCheckpoint.Load"/>) reads: <c>config.json</c>, the weights under Hugging
/// Face's tensor names in <c>model.safetensors</c> or in shards with <c>model.safetensors.index.json</c>, and the
/// tokenizer files of the source folder. The folder appears complete or not at all.
/// </summary>
public static class MergedCheckpointWriter
{
    /// <summary>The files copied from <see cref="MergedExportOptions.SourceDirectory"/> when present: tokenizer, chat template and generation settings.</summary>
    public static IReadOnlyList<string> CopiedFiles { get; } =
    [
        "tokenizer.json", "tokenizer_config.json", "tokenizer.model", "special_tokens_map.json", "added_tokens.json",
        "vocab.json", "merges.txt", "chat_template.jinja", "chat_template.json", "generation_config.json",
    ];

    /// <summary>
    /// Merges (through <see cref="MergedExportOptions.Merge"/>), writes <paramref name="model"/> to
    /// <paramref name="directory"/>, and unmerges (through <see cref="MergedExportOptions.Unmerge"/>), also on failure.
    /// Everything is written to a temporary sibling folder that is renamed into place at the end.
    /// </summary>
    /// <exception cref="ArgumentException">Only one of Merge and Unmerge is given, the dtype is not a float type, or the shard size is not positive.</exception>
    /// <exception cref="InvalidOperationException">The model lacks a tensor its config implies, or holds it with another shape (the message names it).</exception>
    /// <exception cref="IOException">The target is a file, or a non-empty folder without <see cref="MergedExportOptions.Overwrite"/>.</exception>
    public static void Write(LlamaForCausalLM model, string directory, MergedExportOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentException.ThrowIfNullOrWhiteSpace(directory);
        options ??= new MergedExportOptions();
        if ((options.Merge is null) != (options.Unmerge is null))
        {
            throw new ArgumentException("Give both Merge and Unmerge (the model must be unmerged after the write), or neither.", nameof(options));
        }

        if (options.MaxShardBytes <= 0)
        {
            throw new ArgumentException($"MaxShardBytes must be positive; got {options.MaxShardBytes}.", nameof(options));
        }

        if (options.SourceDirectory is { } source && !Directory.Exists(source))
        {
            throw new DirectoryNotFoundException($"The source folder '{source}' (whose tokenizer files are copied) does not exist.");
        }

        var dtype = options.Dtype ?? SourceDtype(model);
        if (dtype is not (ScalarType.Float32 or ScalarType.BFloat16 or ScalarType.Float16 or ScalarType.Float64))
        {
            throw new ArgumentException($"Dtype {dtype} cannot be written; use Float32, BFloat16, Float16 or Float64.", nameof(options));
        }

        using var staging = StagingFolder.Create(directory, options.Overwrite);
        options.Merge?.Invoke();
        try
        {
            WriteWeights(model, staging.Path, dtype, options.MaxShardBytes);
        }
        finally
        {
            options.Unmerge?.Invoke();
        }

        WriteText(Path.Combine(staging.Path, HfCheckpoint.ConfigFile), (model.Config with { TorchDtype = HfCheckpoint.TorchDtypeName(dtype) }).ToJson());
        foreach (var file in CopiedFiles)
        {
            var from = options.SourceDirectory is null ? null : Path.Combine(options.SourceDirectory, file);
            if (from is not null && File.Exists(from))
            {
                File.Copy(from, Path.Combine(staging.Path, file));
            }
        }

        staging.Commit();
    }

    /// <summary>The dtype recorded in the config the model was loaded with (<c>torch_dtype</c>), else the model's.</summary>
    private static ScalarType SourceDtype(LlamaForCausalLM model) => model.Config.TorchDtype switch
    {
        "float32" => ScalarType.Float32,
        "bfloat16" => ScalarType.BFloat16,
        "float16" => ScalarType.Float16,
        "float64" => ScalarType.Float64,
        _ => model.parameters().First().dtype,
    };

    private static void WriteWeights(LlamaForCausalLM model, string folder, ScalarType dtype, long maxShardBytes)
    {
        var state = model.state_dict();
        var expected = LlamaTensorNames.For(model.Config);
        foreach (var (name, shape) in expected)
        {
            if (!state.TryGetValue(name, out var tensor))
            {
                throw new InvalidOperationException($"The model has no tensor '{name}', which a {model.Config.Architecture} checkpoint holds; was a layer replaced by a module that keeps its weight elsewhere?");
            }

            if (!tensor.shape.SequenceEqual(shape))
            {
                throw new InvalidOperationException($"The model's tensor '{name}' has shape [{string.Join(", ", tensor.shape)}]; its config implies [{string.Join(", ", shape)}].");
            }
        }

        ShardedWeights.Write(folder, [.. expected.Select(e => e.Name)], name => state[name].NumberOfElements * ElementSize(dtype), maxShardBytes, name => state[name].detach().to_type(dtype));
    }

    private static long ElementSize(ScalarType dtype) => dtype switch
    {
        ScalarType.Float64 => 8,
        ScalarType.Float32 => 4,
        _ => 2,
    };

    private static void WriteText(string path, string text) => File.WriteAllText(path, text, new UTF8Encoding(false));
}
