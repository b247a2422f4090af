using GuardSpace.Collection;
using GuardSpace.Models.Checkpoints;
using GuardSpace.Models.Llama;
using GuardSpace.Models.Tokenization;
using GuardSpace.Serialization;
using GuardSpace.Storage;
using GuardSpace.Targeting;
using GuardSpace.Tests.Models;
using GuardSpace.Tests.TestUtilities;
using TorchSharp;
using static TorchSharp.torch;

namespace GuardSpace.Tests.Fuzz;

/// <summary>
/// One loader under fuzz: how to write a valid input folder, which of its files the mutations damage, and the load
/// itself (which disposes whatever it loaded).
/// </summary>
internal sealed record LoaderTarget(string Name, Action<string> WriteValid, IReadOnlyList<string> Files, Action<string> Load)
{
    /// <summary>How much slower than the others one case of this loader is: it runs that many times fewer cases.</summary>
    public int CostFactor { get; init; } = 1;

    public override string ToString() => Name;
}

/// <summary>
/// Every loader entry point the fuzz test calls, in one place (repoint them here when a reader moves), and the failures
/// it accepts (none at present).
/// </summary>
internal static class LoaderTargets
{
    public static readonly LoaderTarget CoreSafetensors = new("core-safetensors", WriteMixedSafetensors, ["tensors.safetensors"], dir =>
    {
        var (tensors, _) = SafetensorsReader.ReadAll(Path.Combine(dir, "tensors.safetensors"));
        foreach (var t in tensors.Values)
        {
            t.Dispose();
        }
    });

    public static readonly LoaderTarget CovarianceSetFile = new("covariance-set", WriteCovarianceSet, ["covariances.safetensors"], dir =>
    {
        using var set = CovarianceSet.Load(Path.Combine(dir, "covariances.safetensors"));
    });

    public static readonly LoaderTarget Adapter = new("adapter", WriteAdapter, [AdapterFiles.ConfigFile, AdapterFiles.StateFile], LoadAdapter) { CostFactor = 4 };

    /// <summary>A format-version-1 adapter: no checksums, so damaged tensors reach the structural and content checks.</summary>
    public static readonly LoaderTarget AdapterVersion1 = new("adapter-v1", WriteAdapterVersion1, [AdapterFiles.ConfigFile, AdapterFiles.StateFile], LoadAdapter) { CostFactor = 4 };

    private static readonly string[] CheckpointFiles = ["config.json", "model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors", "model.safetensors.index.json"];

    public static readonly LoaderTarget Checkpoint = new("hf-checkpoint", WriteCheckpoint, CheckpointFiles, LoadCheckpoint) { CostFactor = 2 };

    public static readonly LoaderTarget Config = new("llama-config", dir => TinyCheckpoint.WriteConfig(dir, new TinyCheckpoint.Spec(), ScalarType.Float32), ["config.json"],
        dir => LlamaConfig.FromFile(Path.Combine(dir, "config.json")));

    public static readonly LoaderTarget ByteLevelTokenizer = new("tokenizer-json", dir => TokenizerFiles.WriteByteLevelBpe(dir), ["tokenizer.json"],
        dir => HfTokenizer.Load(dir));

    public static readonly LoaderTarget SentencePieceTokenizer = new("tokenizer-model", TokenizerFiles.WriteSentencePiece, ["tokenizer.model"],
        dir => HfTokenizer.Load(dir));

    public static IReadOnlyList<LoaderTarget> All { get; } = [CoreSafetensors, CovarianceSetFile, Adapter, AdapterVersion1, Checkpoint, Config, ByteLevelTokenizer, SentencePieceTokenizer];

    /// <summary>
    /// Failures accepted for now, each with its reason (none at present: every loader passes): target, mutation class and the
    /// failure (exception type, "timeout", "allocation" or "unnamed-file"). Remove an entry once its loader is fixed; the
    /// fuzz test reports a listed gap that no longer occurs, so stale entries show up.
    /// </summary>
    public static readonly IReadOnlySet<(string Target, string Mutation, string Failure)> KnownGaps = new HashSet<(string, string, string)>
    {
    };

    private static void LoadAdapter(string dir)
    {
        using var model = new TinyTransformer(seed: 1);
        using var guarded = GuardedModel.Load(model, dir);
    }

    private static void LoadCheckpoint(string dir)
    {
        using var model = HfCheckpoint.Load(dir);
    }

    private static void WriteMixedSafetensors(string dir)
    {
        using var scope = NewDisposeScope();
        var tensors = new Dictionary<string, Tensor>(StringComparer.Ordinal)
        {
            ["f32"] = arange(12, dtype: ScalarType.Float32).reshape(3, 4),
            ["f64"] = linspace(0, 1, 5, dtype: ScalarType.Float64),
            ["bf16"] = ones(2, 3, dtype: ScalarType.BFloat16),
            ["f16"] = ones(4, dtype: ScalarType.Float16),
            ["i64"] = arange(6, dtype: ScalarType.Int64).reshape(2, 1, 3),
            ["flag"] = tensor(new[] { true, false, true }),
            ["scalar"] = tensor(2.5f),
            ["empty"] = zeros(0, 3, dtype: ScalarType.Float32),
        };
        SafetensorsWriter.Write(Path.Combine(dir, "tensors.safetensors"), tensors, new Dictionary<string, string> { ["format"] = "pt", ["note"] = "fuzz seed" });
    }

    private static void WriteCovarianceSet(string dir)
    {
        using var scope = NewDisposeScope();
        using var model = new CollectionBlock();
        var prompts = Enumerable.Range(0, 3).Select(i => CollectionTestData.Randn(7 + (ulong)i, 1, 3 + i, CollectionBlock.Width)).ToList();
        using var set = ActivationCovarianceCollector.Collect(model, TargetModules.Suffixes(CollectionBlock.LayerNames),
            new CalibrationRun<Tensor>(prompts, (p, _) => model.call(p)), new CovarianceCollectionOptions());
        set.Save(Path.Combine(dir, "covariances.safetensors"));
    }

    private static void WriteAdapter(string dir)
    {
        using var saved = SavedAdapters.TrainAndSave();
        foreach (var file in Directory.GetFiles(saved))
        {
            File.Copy(file, Path.Combine(dir, Path.GetFileName(file)));
        }
    }

    private static void WriteAdapterVersion1(string dir)
    {
        WriteAdapter(dir);
        SavedAdapters.DowngradeToVersion1(dir);
    }

    private static void WriteCheckpoint(string dir)
    {
        using var checkpoint = TinyCheckpoint.Write(new TinyCheckpoint.Spec { Layers = 1 }, ScalarType.BFloat16, shards: 2);
        foreach (var file in Directory.GetFiles(checkpoint.Directory))
        {
            File.Copy(file, Path.Combine(dir, Path.GetFileName(file)));
        }
    }
}
