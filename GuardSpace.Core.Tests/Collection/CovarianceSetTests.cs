using System.Text;
using GuardSpace.Collection;
using GuardSpace.Serialization;
using GuardSpace.Storage;
using GuardSpace.Targeting;
using GuardSpace.Tests.TestUtilities;
using TorchSharp;
using static TorchSharp.torch;

namespace GuardSpace.Tests.Collection;

public sealed class CovarianceSetTests : IDisposable
{
    private static readonly TargetModules AllSix = TargetModules.Suffixes(CollectionBlock.LayerNames);
    private readonly TempDirectory folder = TempDirectory.Create("guardspace-covset-");

    public void Dispose() => folder.Dispose();

    private static List<Tensor> Prompts(ulong seed, int count) =>
        Enumerable.Range(0, count).Select(i => CollectionTestData.Randn(seed + (ulong)i, 1, 3 + i, CollectionBlock.Width)).ToList();

    private static CovarianceSet CollectOn(CollectionBlock model, IEnumerable<Tensor> prompts, ActivationScaling scaling = ActivationScaling.PerSampleMaxAbs, TargetModules? targets = null) =>
        ActivationCovarianceCollector.Collect(model, targets ?? AllSix, new CalibrationRun<Tensor>(prompts, (p, _) => model.call(p)), new CovarianceCollectionOptions { Scaling = scaling });

    [Fact]
    public void MergeOfTwoShardsEqualsOneCollectionOverAllPrompts()
    {
        using var model = new CollectionBlock();
        var prompts = Prompts(200, 6);
        using var all = CollectOn(model, prompts);
        using var a = CollectOn(model, prompts.Take(4));
        using var b = CollectOn(model, prompts.Skip(4));
        var aBefore = a["q_proj"].Sum.clone();
        using var merged = CovarianceSet.Merge(a, b);

        Assert.Equal(all.LayerNames, merged.LayerNames);
        Assert.Equal(all.Scaling, merged.Scaling);
        foreach (var c in all)
        {
            var m = merged[c.Key];
            Assert.Equal(c.Layers, m.Layers);
            Assert.Equal(c.TokenCount, m.TokenCount);
            Assert.Equal(c.SampleCount, m.SampleCount);
            var err = CovarianceOracle.RelativeError(m.Sum, CovarianceOracle.ToMatrix(c.Sum));
            Assert.True(err < 1e-14, $"{c.Key}: {err:G3}");
        }

        Assert.True(CovarianceOracle.BitEqual(aBefore, a["q_proj"].Sum)); // inputs unchanged
        Assert.NotSame(a["q_proj"].Sum, merged["q_proj"].Sum);
    }

    [Fact]
    public void MergeRejectsMismatchesNamingTheDifference()
    {
        using var model = new CollectionBlock();
        var prompts = Prompts(300, 2);
        using var scaled = CollectOn(model, prompts);
        using var unscaled = CollectOn(model, prompts, ActivationScaling.None);
        using var fewer = CollectOn(model, prompts, targets: TargetModules.Suffixes("q_proj", "k_proj", "v_proj", "o_proj", "up_proj"));
        using var split = ActivationCovarianceCollector.Collect(model, AllSix, new CalibrationRun<Tensor>(prompts, (p, _) => model.call(p)),
            new CovarianceCollectionOptions { ShareCovarianceForSharedInputs = false });

        Assert.Contains("scaling", Assert.Throws<ArgumentException>(() => CovarianceSet.Merge(scaled, unscaled)).Message);
        Assert.Contains("down_proj", Assert.Throws<ArgumentException>(() => CovarianceSet.Merge(scaled, fewer)).Message);
        Assert.Contains("groups", Assert.Throws<ArgumentException>(() => CovarianceSet.Merge(scaled, split)).Message);
    }

    [Fact]
    public void SaveLoadRoundTripIsBitExact()
    {
        using var model = new CollectionBlock();
        using var set = CollectOn(model, Prompts(400, 3));
        var path = Path.Combine(folder, "cov.safetensors");
        set.Save(path);
        using var loaded = CovarianceSet.Load(path);

        Assert.Equal(set.Scaling, loaded.Scaling);
        Assert.Equal(set.LayerNames, loaded.LayerNames);
        Assert.Equal(set.Count, loaded.Count);
        foreach (var c in set)
        {
            var l = loaded[c.Key];
            Assert.Equal(c.Layers, l.Layers);
            Assert.Equal(c.InputWidth, l.InputWidth);
            Assert.Equal(c.TokenCount, l.TokenCount);
            Assert.Equal(c.SampleCount, l.SampleCount);
            Assert.True(CovarianceOracle.BitEqual(c.Sum, l.Sum), c.Key);
        }

        Assert.Same(loaded["q_proj"], loaded["v_proj"]);
    }

    [Fact]
    public void LoadRejectsCorruptedOrInconsistentFiles()
    {
        using var model = new CollectionBlock();
        using var set = CollectOn(model, Prompts(500, 2));
        var path = Path.Combine(folder, "cov.safetensors");
        set.Save(path);
        var good = File.ReadAllBytes(path);

        // Truncated file.
        File.WriteAllBytes(path, good[..^5]);
        Assert.Contains(path, Assert.Throws<InvalidDataException>(() => CovarianceSet.Load(path)).Message);

        // A plain safetensors file without GuardSpace metadata.
        SafetensorsWriter.Write(path, new Dictionary<string, Tensor> { ["q_proj"] = eye(6, dtype: ScalarType.Float64) });
        Assert.Contains("format", Assert.Throws<InvalidDataException>(() => CovarianceSet.Load(path)).Message);

        // Metadata that disagrees with the tensors: a wrong width, a missing tensor, an extra tensor, a bad scaling.
        var goodPath = Path.Combine(folder, "good.safetensors");
        File.WriteAllBytes(goodPath, good);
        var (tensors, metadata) = SafetensorsReader.ReadAll(goodPath);

        void Expect(string fragment, Dictionary<string, Tensor> t, Dictionary<string, string> m)
        {
            SafetensorsWriter.Write(path, t, m);
            var ex = Assert.Throws<InvalidDataException>(() => CovarianceSet.Load(path));
            Assert.Contains(fragment, ex.Message);
        }

        var groups = metadata["groups"];
        Expect("input width 7", tensors, new(metadata) { ["groups"] = groups.Replace("\"input_width\":6", "\"input_width\":7") });
        Expect("no tensor", tensors.Where(kv => kv.Key != "o_proj").ToDictionary(), metadata);
        Expect("belong to no group", new(tensors) { ["extra"] = zeros(2) }, metadata);
        Expect("scaling", tensors, new(metadata) { ["scaling"] = "Sometimes" });
        Expect("more than one group", tensors, new(metadata) { ["groups"] = groups.Replace("\"layers\":[\"o_proj\"]", "\"layers\":[\"o_proj\",\"k_proj\"]") });
        Expect("not valid JSON", tensors, new(metadata) { ["groups"] = "[{" });
        Expect("token_count", tensors, new(metadata) { ["groups"] = groups.Replace("\"token_count\":", "\"token_count\":-") });

        // Guard: the unmodified content loads.
        SafetensorsWriter.Write(path, tensors, metadata);
        using var ok = CovarianceSet.Load(path);
        Assert.Equal(4, ok.Count);
        Assert.Contains("\"format\":\"guardspace.covariance-set\"", Encoding.UTF8.GetString(good));
    }

    [Fact]
    public void DisposedSetRefusesAccess()
    {
        using var model = new CollectionBlock();
        var set = CollectOn(model, Prompts(600, 1));
        var c = set["q_proj"];
        set.Dispose();
        Assert.Throws<ObjectDisposedException>(() => set["q_proj"]);
        Assert.Throws<ObjectDisposedException>(() => c.Sum);
    }
}
