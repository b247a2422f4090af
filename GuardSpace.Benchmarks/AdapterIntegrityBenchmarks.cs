using System.Security.Cryptography;
using System.Text.Json;
using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Configs;
using GuardSpace.Adapters;
using GuardSpace.Serialization;
using GuardSpace.Storage;
using GuardSpace.Targeting;
using Microsoft.Extensions.Logging.Abstractions;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace GuardSpace.Benchmarks;

/// <summary>
/// What the integrity checks of format version 2 cost against a save and a load of a ~100 MB adapter: 30 guarded
/// layers of 1024 x 1024 (float32 weights), r = 64, each with its own float64 basis (1 MB of factors and up to 4 MB of
/// basis per layer; the setup prints the file's size). The method is NullSpace-LoRA, the conservative case: GuardSpace's
/// Load also recomputes <c>W - B0 A0</c> for every layer, which only makes the load longer and the checks' share
/// smaller (and its 30 decompositions would outlast the in-process toolchain's time limit on a shared machine). The
/// model, its adapters and the saved folder are built once per process, not once per case. Category Save: <see cref="Save"/> (baseline, the whole save, checksums included) against the
/// checksums alone (<see cref="SaveChecksums"/>) and against SHA-256 of the same bytes (<see cref="SaveSha256"/>, the
/// alternative the issue named). Category Load: <see cref="Load"/> (baseline, the whole load, every check included)
/// against each check alone and all of them (<see cref="LoadAllChecks"/>), run exactly as Load runs them.
/// </summary>
[GroupBenchmarksBy(BenchmarkLogicalGroupRule.ByCategory)]
[CategoriesColumn]
public class AdapterIntegrityBenchmarks
{
    public const int Width = 1024;
    public const int LayerCount = 30;
    public const int Rank = 64;

    private static Fixture? _shared;
    private GuardedModel? _loaded;

    private Fixture F => _shared!;

    /// <summary>Everything the cases share, built by the first <see cref="Setup"/> of the process.</summary>
    private sealed record Fixture(
        GuardedModel Guarded,
        Module<Tensor, Tensor> Fresh,
        string Directory,
        Dictionary<string, Tensor> Tensors,
        AdapterConfig Config,
        List<(string Name, Linear Layer)> Targets);

    private static Module<Tensor, Tensor> Model()
    {
        manual_seed(5);
        var layers = new List<(string, Module<Tensor, Tensor>)>();
        for (var i = 0; i < LayerCount; i++)
        {
            layers.Add(($"fc{i}", Linear(Width, Width, dtype: ScalarType.Float32)));
            layers.Add(($"act{i}", Tanh()));
        }

        var model = Sequential(layers);
        model.to(BenchEnv.Device);
        return model;
    }

    [GlobalSetup]
    public void Setup()
    {
        if (_shared is not null)
        {
            return;
        }

        var model = Model();
        var device = BenchEnv.Device;
        var harmful = randn(Width / 2, Width, generator: BenchEnv.Seeded(2)).to(device);
        var guarded = GuardedModel.Attach(model, new GuardedLoraOptions { Rank = Rank, Method = InitializationMethod.NullSpaceLora, Targets = TargetModules.AllLinear() }, new CalibrationData
        {
            RunHarmfulPrompts = _ => model.call(harmful).Dispose(),
        });
        var directory = System.IO.Directory.CreateTempSubdirectory("guardspace-bench-").FullName;
        guarded.Save(directory);
        var bytes = new FileInfo(Path.Combine(directory, AdapterFiles.StateFile)).Length;
        Console.WriteLine($"// adapter state file: {bytes / 1e6:F1} MB, {guarded.Adapters.Count} layers");

        var fresh = Model();
        var (tensors, _) = SafetensorsReader.ReadAll(Path.Combine(directory, AdapterFiles.StateFile));
        var config = JsonSerializer.Deserialize<AdapterConfig>(File.ReadAllText(Path.Combine(directory, AdapterFiles.ConfigFile)), AdapterConfig.Json)!;
        _shared = new Fixture(guarded, fresh, directory, tensors, config, [.. LinearLayerSelector.Select(fresh, TargetModules.AllLinear())]);
        AppDomain.CurrentDomain.ProcessExit += (_, _) => System.IO.Directory.Delete(directory, recursive: true);
        BenchEnv.Sync();
    }

    [IterationCleanup(Target = nameof(Load))]
    public void DetachLoaded()
    {
        _loaded?.Detach();
        _loaded = null;
    }

    [Benchmark(Baseline = true)]
    [BenchmarkCategory("Save")]
    public void Save() => F.Guarded.Save(F.Directory);

    [Benchmark]
    [BenchmarkCategory("Save")]
    public int SaveChecksums()
    {
        using var scope = NewDisposeScope();
        return F.Tensors.Values.Sum(t => TensorChecksum.Compute(t.cpu().contiguous()).Length);
    }

    [Benchmark]
    [BenchmarkCategory("Save")]
    public int SaveSha256()
    {
        using var scope = NewDisposeScope();
        var total = 0;
        foreach (var t in F.Tensors.Values)
        {
            total += SHA256.HashData(t.cpu().contiguous().bytes).Length;
        }

        return total;
    }

    [Benchmark(Baseline = true)]
    [BenchmarkCategory("Load")]
    public void Load()
    {
        _loaded = GuardedModel.Load(F.Fresh, F.Directory);
        BenchEnv.Sync();
    }

    [Benchmark]
    [BenchmarkCategory("Load")]
    public void LoadChecksums()
    {
        var actual = F.Tensors.ToDictionary(kv => kv.Key, kv => TensorChecksum.Compute(kv.Value), StringComparer.Ordinal);
        AdapterLoadChecks.VerifyChecksums(F.Config.TensorChecksums!, actual, "state", "config");
    }

    [Benchmark]
    [BenchmarkCategory("Load")]
    public void LoadContentChecks() => AdapterLoadChecks.VerifyContent(F.Config, F.Tensors, "state");

    [Benchmark]
    [BenchmarkCategory("Load")]
    public void LoadFingerprints() => AdapterLoadChecks.VerifyBaseWeights(F.Config, F.Targets, new AdapterLoadOptions(), NullLogger.Instance, "adapter");

    [Benchmark]
    [BenchmarkCategory("Load")]
    public void LoadAllChecks()
    {
        LoadChecksums();
        LoadContentChecks();
        LoadFingerprints();
    }
}
