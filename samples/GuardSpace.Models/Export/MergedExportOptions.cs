using static TorchSharp.torch;

namespace GuardSpace.Models.Export;

/// <summary>How <see cref="MergedCheckpointWriter.Write"/> writes a fine-tuned model as a Hugging Face checkpoint folder.</summary>
public sealed record MergedExportOptions
{
    /// <summary>Hugging Face's default shard size for <c>save_pretrained</c> (5 GB, decimal).</summary>
    public const long DefaultMaxShardBytes = 5_000_000_000;

    /// <summary>
    /// Merges the adapters into the weights before the write (GuardSpace: <c>guarded.Merge</c>). Null: the weights are
    /// written as they are. Given together with <see cref="Unmerge"/>, which runs after the write, also when it fails.
    /// </summary>
    public Action? Merge { get; init; }

    /// <summary>Undoes <see cref="Merge"/> after the write, so the model in memory is as before (GuardSpace: <c>guarded.Unmerge</c>).</summary>
    public Action? Unmerge { get; init; }

    /// <summary>
    /// The checkpoint folder the model was loaded from: its tokenizer and generation files
    /// (<see cref="MergedCheckpointWriter.CopiedFiles"/>) are copied to the export. Null: nothing is copied.
    /// </summary>
    public string? SourceDirectory { get; init; }

    /// <summary>
    /// The weights' dtype in the files: Float32, BFloat16, Float16 (or Float64). Null: the source's, i.e. the
    /// <c>torch_dtype</c> of the config the model was loaded with, else the model's own dtype.
    /// </summary>
    public ScalarType? Dtype { get; init; }

    /// <summary>Largest shard in bytes; a larger checkpoint is split into <c>model-0000i-of-0000n.safetensors</c> with an index. A single larger tensor gets a shard of its own.</summary>
    public long MaxShardBytes { get; init; } = DefaultMaxShardBytes;

    /// <summary>Replace an existing non-empty folder (atomically: the old one is kept until the new one is in place). False: such a folder is refused.</summary>
    public bool Overwrite { get; init; }
}
