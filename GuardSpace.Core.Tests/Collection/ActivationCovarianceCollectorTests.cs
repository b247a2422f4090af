using GuardSpace.Collection;
using GuardSpace.Targeting;
using GuardSpace.Tests.TestUtilities;
using MathNet.Numerics.LinearAlgebra;
using TorchSharp;
using static TorchSharp.torch;

namespace GuardSpace.Tests.Collection;

public class ActivationCovarianceCollectorTests
{
    private static readonly TargetModules AllSix = TargetModules.Suffixes(CollectionBlock.LayerNames);

    private static CovarianceCollectionOptions Opts(ActivationScaling scaling, bool share = true) =>
        new() { Scaling = scaling, ShareCovarianceForSharedInputs = share };

    /// <summary>The oracle covariance of each layer over several [batch, seq, n] inputs (one entry per forward call).</summary>
    private static Dictionary<string, Matrix<double>> Oracle(CollectionBlock model, IEnumerable<(Tensor X, bool[,]? Mask)> calls, bool scaled)
    {
        var result = new Dictionary<string, Matrix<double>>();
        foreach (var (x, mask) in calls)
        {
            foreach (var (layer, input) in model.ReferenceInputs(x))
            {
                var n = (int)input.shape[^1];
                var c = CovarianceOracle.Sum(CovarianceOracle.Samples(input, mask), scaled, n);
                result[layer] = result.TryGetValue(layer, out var prev) ? prev + c : c;
            }
        }

        return result;
    }

    [Theory]
    [InlineData(ActivationScaling.None)]
    [InlineData(ActivationScaling.PerSampleMaxAbs)]
    public void CovarianceEqualsIndependentFloat64Reference(ActivationScaling scaling)
    {
        using var model = new CollectionBlock();
        model.eval();
        var x1 = CollectionTestData.Randn(11, 3, 5, CollectionBlock.Width) * 3.0;
        var x2 = CollectionTestData.Randn(12, 2, 7, CollectionBlock.Width);
        using var collector = new ActivationCovarianceCollector(model, AllSix, Opts(scaling));
        model.call(x1);
        model.call(x2);
        using var set = collector.ToCovarianceSet();

        var oracle = Oracle(model, [(x1, null), (x2, null)], scaling == ActivationScaling.PerSampleMaxAbs);
        foreach (var layer in CollectionBlock.LayerNames)
        {
            var c = set[layer];
            Assert.Equal(ScalarType.Float64, c.Sum.dtype);
            Assert.Equal(oracle[layer].RowCount, c.InputWidth);
            Assert.Equal(3 * 5 + 2 * 7, c.TokenCount);
            Assert.Equal(5, c.SampleCount);
            Assert.True(CovarianceOracle.RelativeError(c.Sum, oracle[layer]) < 1e-13, $"{layer}: {CovarianceOracle.RelativeError(c.Sum, oracle[layer]):G3}");
        }

        // The scaling must matter: the other mode's oracle differs clearly.
        var other = Oracle(model, [(x1, null), (x2, null)], scaling != ActivationScaling.PerSampleMaxAbs);
        Assert.True(CovarianceOracle.RelativeError(set["q_proj"].Sum, other["q_proj"]) > 1e-2);
    }

    [Fact]
    public void Rank2InputIsOneSamplePerCallAndHigherRanksFlatten()
    {
        using var layer = TorchSharp.torch.nn.Linear(4, 3, dtype: ScalarType.Float64);
        using var seq = TorchSharp.torch.nn.Sequential(("fc", layer));
        var tokens = CollectionTestData.Randn(21, 5, 4);
        var rank4 = CollectionTestData.Randn(22, 2, 3, 2, 4);
        using var collector = new ActivationCovarianceCollector(seq, TargetModules.ExactNames("fc"), Opts(ActivationScaling.PerSampleMaxAbs));
        seq.call(tokens);
        seq.call(rank4);
        using var set = collector.ToCovarianceSet();
        Assert.Equal(2, set["fc"].SampleCount);
        Assert.Equal(5 + 12, set["fc"].TokenCount);
        var samples = CovarianceOracle.Samples(tokens.unsqueeze(0)).Concat(CovarianceOracle.Samples(rank4.reshape(1, -1, 4)));
        Assert.True(CovarianceOracle.RelativeError(set["fc"].Sum, CovarianceOracle.Sum(samples, true, 4)) < 1e-13);
    }

    [Theory]
    [InlineData(ActivationScaling.None)]
    [InlineData(ActivationScaling.PerSampleMaxAbs)]
    public void MaskedTokensCountNowhere(ActivationScaling scaling)
    {
        using var model = new CollectionBlock();
        var x = CollectionTestData.Randn(31, 3, 4, CollectionBlock.Width);
        bool[,] mask = { { true, true, false, false }, { true, true, true, true }, { false, false, false, false } };
        using var maskTensor = tensor(new long[] { 1, 1, 0, 0, 1, 1, 1, 1, 0, 0, 0, 0 }).reshape(3, 4);

        // The same batch with huge values in every masked token.
        var huge = x.clone();
        for (var i = 0; i < 3; i++)
        {
            for (var j = 0; j < 4; j++)
            {
                if (!mask[i, j])
                {
                    huge[i, j].fill_(1e30);
                }
            }
        }

        CovarianceSet Run(Tensor input)
        {
            using var collector = new ActivationCovarianceCollector(model, AllSix, Opts(scaling));
            collector.SetTokenMask(maskTensor);
            model.call(input);
            return collector.ToCovarianceSet();
        }

        using var clean = Run(x);
        using var perturbed = Run(huge);
        var oracle = Oracle(model, [(x, mask)], scaling == ActivationScaling.PerSampleMaxAbs);
        foreach (var layer in CollectionBlock.LayerNames)
        {
            Assert.Equal(6, clean[layer].TokenCount);
            Assert.Equal(2, clean[layer].SampleCount);
            Assert.True(CovarianceOracle.BitEqual(clean[layer].Sum, perturbed[layer].Sum), $"{layer}: masked tokens changed the sum");
            Assert.True(CovarianceOracle.RelativeError(clean[layer].Sum, oracle[layer]) < 1e-13, layer);
        }

        // Guard: without the mask the huge tokens do change the result.
        using var unmasked = new ActivationCovarianceCollector(model, AllSix, Opts(scaling));
        model.call(huge);
        using var unmaskedSet = unmasked.ToCovarianceSet();
        Assert.False(CovarianceOracle.BitEqual(clean["q_proj"].Sum, unmaskedSet["q_proj"].Sum));
        Assert.Equal(12, unmaskedSet["q_proj"].TokenCount);
    }

    [Fact]
    public void MaskAppliesUntilChanged()
    {
        using var model = new CollectionBlock();
        var x = CollectionTestData.Randn(41, 2, 3, CollectionBlock.Width);
        using var collector = new ActivationCovarianceCollector(model, AllSix, Opts(ActivationScaling.None));
        collector.SetTokenMask(tensor(new[] { true, false, false, true, true, false }).reshape(2, 3));
        model.call(x);
        model.call(x);
        collector.SetTokenMask(null);
        model.call(x);
        using var set = collector.ToCovarianceSet();
        Assert.Equal(3 + 3 + 6, set["o_proj"].TokenCount);
        Assert.Equal(6, set["o_proj"].SampleCount);
    }

    [Fact]
    public void SharedInputsAreStoredOnceAndOtherLayersGetTheirOwn()
    {
        using var model = new CollectionBlock();
        using var collector = new ActivationCovarianceCollector(model, AllSix, Opts(ActivationScaling.None));
        model.call(CollectionTestData.Randn(51, 2, 4, CollectionBlock.Width));
        model.call(CollectionTestData.Randn(52, 1, 3, CollectionBlock.Width));
        using var set = collector.ToCovarianceSet();

        Assert.Equal(4, set.Count);
        var qkv = set["k_proj"];
        Assert.Same(qkv, set["q_proj"]);
        Assert.Same(qkv, set["v_proj"]);
        Assert.Equal("q_proj", qkv.Key);
        Assert.Equal(["q_proj", "k_proj", "v_proj"], qkv.Layers);
        Assert.Equal(11, qkv.TokenCount);
        foreach (var own in new[] { "o_proj", "up_proj", "down_proj" })
        {
            Assert.Equal([own], set[own].Layers);
            Assert.NotSame(qkv, set[own]);
        }

        Assert.Equal(["q_proj", "k_proj", "v_proj", "o_proj", "up_proj", "down_proj"], set.LayerNames);
        Assert.Equal(["q_proj", "o_proj", "up_proj", "down_proj"], set.Select(c => c.Key));
        Assert.True(set.TryGet("v_proj", out var viaTry) && ReferenceEquals(viaTry, qkv));
        Assert.False(set.TryGet("nope", out _));
        var missing = Assert.Throws<KeyNotFoundException>(() => set["nope"]);
        Assert.Contains("q_proj", missing.Message);
    }

    [Fact]
    public void SharingOffGivesEveryLayerItsOwnCovariance()
    {
        using var model = new CollectionBlock();
        var x = CollectionTestData.Randn(61, 2, 4, CollectionBlock.Width);
        using var collector = new ActivationCovarianceCollector(model, AllSix, Opts(ActivationScaling.None, share: false));
        model.call(x);
        using var set = collector.ToCovarianceSet();
        Assert.Equal(6, set.Count);
        Assert.NotSame(set["q_proj"], set["k_proj"]);
        Assert.Equal(["k_proj"], set["k_proj"].Layers);
        Assert.True(CovarianceOracle.BitEqual(set["q_proj"].Sum, set["k_proj"].Sum));
        Assert.Equal(8, set["v_proj"].TokenCount);
    }

    [Fact]
    public void SameTensorFedAgainIsCountedAgain()
    {
        using var model = new CollectionBlock();
        var x = CollectionTestData.Randn(62, 2, 4, CollectionBlock.Width);
        using var collector = new ActivationCovarianceCollector(model, AllSix, Opts(ActivationScaling.None));
        model.call(x);
        model.call(x);
        using var set = collector.ToCovarianceSet();
        Assert.Equal(16, set["q_proj"].TokenCount);
        var once = Oracle(model, [(x, null)], scaled: false);
        Assert.True(CovarianceOracle.RelativeError(set["q_proj"].Sum, once["q_proj"] * 2) < 1e-13);
    }

    [Fact]
    public void InconsistentSharingBetweenPassesThrowsNamingTheLayers()
    {
        using var model = new SwitchingModel();
        using var collector = new ActivationCovarianceCollector(model, TargetModules.Suffixes("a", "b"));
        model.call(CollectionTestData.Randn(63, 2, 4));
        model.Split = true;
        var ex = Assert.Throws<InvalidOperationException>(() => model.call(CollectionTestData.Randn(64, 2, 4)));
        Assert.Contains("'b'", ex.Message);
        Assert.Contains("a, b", ex.Message);
    }

    [Fact]
    public void ToCovarianceSetIsIndependentOfTheCollector()
    {
        using var model = new CollectionBlock();
        var collector = new ActivationCovarianceCollector(model, AllSix, Opts(ActivationScaling.None));
        model.call(CollectionTestData.Randn(71, 2, 4, CollectionBlock.Width));
        using var first = collector.ToCovarianceSet();
        var snapshot = first["up_proj"].Sum.clone();
        model.call(CollectionTestData.Randn(72, 2, 4, CollectionBlock.Width));
        using var second = collector.ToCovarianceSet();
        collector.Dispose();

        Assert.True(CovarianceOracle.BitEqual(snapshot, first["up_proj"].Sum));
        Assert.Equal(8, first["up_proj"].TokenCount);
        Assert.Equal(16, second["up_proj"].TokenCount);
        Assert.False(CovarianceOracle.BitEqual(first["up_proj"].Sum, second["up_proj"].Sum));
        Assert.Throws<ObjectDisposedException>(() => collector.ToCovarianceSet());
    }

    [Fact]
    public void DisposeRemovesEveryHook()
    {
        using var model = new CollectionBlock();
        var layers = new[] { model.q_proj, model.k_proj, model.v_proj, model.o_proj, model.up_proj, model.down_proj };
        var before = layers.Select(PostHookCount).ToArray();
        var collector = new ActivationCovarianceCollector(model, AllSix);
        Assert.All(layers.Select(PostHookCount).Zip(before), p => Assert.Equal(p.Second + 1, p.First));

        var nan = full(new long[] { 1, 2, CollectionBlock.Width }, double.NaN, ScalarType.Float64);
        Assert.Throws<ArgumentException>(() => model.call(nan));
        collector.Dispose();

        Assert.Equal(before, layers.Select(PostHookCount).ToArray());
        model.call(nan); // no hook left to object
        model.call(CollectionTestData.Randn(81, 1, 2, CollectionBlock.Width));
    }

    [Fact]
    public void Float32AccumulationWorks()
    {
        using var model = new CollectionBlock();
        var x = CollectionTestData.Randn(91, 3, 5, CollectionBlock.Width);
        var options = new CovarianceCollectionOptions { AccumulationType = ScalarType.Float32 };
        using var collector = new ActivationCovarianceCollector(model, AllSix, options);
        model.call(x);
        using var set = collector.ToCovarianceSet();
        var oracle = Oracle(model, [(x, null)], scaled: true);
        foreach (var layer in CollectionBlock.LayerNames)
        {
            Assert.Equal(ScalarType.Float32, set[layer].Sum.dtype);
            var err = CovarianceOracle.RelativeError(set[layer].Sum, oracle[layer]);
            Assert.True(err < 1e-6, $"{layer}: {err:G3}");
        }
    }

    [Fact]
    public void CollectRunsBatchesReportsProgressAndMatchesManualCollection()
    {
        using var model = new CollectionBlock();
        var batches = Enumerable.Range(0, 3).Select(i => CollectionTestData.Randn(100 + (ulong)i, 2, 3, CollectionBlock.Width)).ToList();
        var reports = new List<CollectionProgress>();
        var progress = new SynchronousProgress<CollectionProgress>(reports.Add);
        var gradEnabled = new List<bool>();
        void RunBatch(Tensor b, ActivationCovarianceCollector _)
        {
            gradEnabled.Add(is_grad_enabled());
            model.call(b);
        }

        var run = new CalibrationRun<Tensor>(batches, RunBatch) { Progress = progress };
        using var set = ActivationCovarianceCollector.Collect(model, AllSix, run);

        Assert.Equal([new(1, 3, 6), new(2, 3, 12), new(3, 3, 18)], reports);
        Assert.All(gradEnabled, Assert.False);
        var oracle = Oracle(model, batches.Select(b => (b, (bool[,]?)null)), scaled: true);
        Assert.True(CovarianceOracle.RelativeError(set["down_proj"].Sum, oracle["down_proj"]) < 1e-13);

        // Hooks are gone once Collect returns.
        Assert.Equal(0, PostHookCount(model.q_proj));

        using var viaAction = ActivationCovarianceCollector.Collect(model, AllSix, c => batches.ForEach(b => model.call(b)));
        Assert.True(CovarianceOracle.BitEqual(set["q_proj"].Sum, viaAction["q_proj"].Sum));
    }

    [Fact]
    public void CollectHonoursCancellation()
    {
        using var model = new CollectionBlock();
        using var cts = new CancellationTokenSource();
        var batches = Enumerable.Range(0, 5).Select(i => CollectionTestData.Randn(110 + (ulong)i, 1, 2, CollectionBlock.Width));
        var ran = 0;
        var run = new CalibrationRun<Tensor>(batches, (b, _) =>
        {
            model.call(b);
            if (++ran == 2)
            {
                cts.Cancel();
            }
        });
        Assert.ThrowsAny<OperationCanceledException>(() => ActivationCovarianceCollector.Collect(model, AllSix, run, cancellationToken: cts.Token));
        Assert.Equal(2, ran);
        Assert.Equal(0, PostHookCount(model.q_proj));
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void HooksLeaveNoTensorsAlivePerForward(bool masked)
    {
        using var model = new CollectionBlock();
        using var x = CollectionTestData.Randn(120, 2, 3, CollectionBlock.Width);
        using var collector = new ActivationCovarianceCollector(model, TargetModules.Suffixes("q_proj"));
        if (masked)
        {
            using var mask = tensor(new[] { true, true, false, true, false, false }).reshape(2, 3);
            collector.SetTokenMask(mask);
        }

        void Step()
        {
            using var y = model.q_proj.call(x);
        }

        Step(); // allocates the running sum
        var stats = DisposeScopeManager.Statistics;
        var live = stats.ThreadTotalLiveCount;
        for (var i = 0; i < 20; i++)
        {
            Step();
        }

        Assert.Equal(live, stats.ThreadTotalLiveCount);
        using var set = collector.ToCovarianceSet();
        Assert.Equal(21 * (masked ? 3 : 6), set["q_proj"].TokenCount);
    }

    internal static int PostHookCount(TorchSharp.torch.nn.Module<Tensor, Tensor> module)
    {
        for (var t = module.GetType(); t is not null; t = t.BaseType)
        {
            var field = t.GetField("post_hooks", System.Reflection.BindingFlags.NonPublic | System.Reflection.BindingFlags.Instance | System.Reflection.BindingFlags.DeclaredOnly);
            if (field is not null)
            {
                return ((System.Collections.ICollection)field.GetValue(module)!).Count;
            }
        }

        throw new InvalidOperationException("TorchSharp's HookableModule no longer has a post_hooks field.");
    }
}
