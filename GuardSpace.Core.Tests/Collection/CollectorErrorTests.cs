using GuardSpace.Collection;
using GuardSpace.Targeting;
using GuardSpace.Tests.TestUtilities;
using Microsoft.Extensions.Logging;
using TorchSharp;
using static TorchSharp.torch;

namespace GuardSpace.Tests.Collection;

public class CollectorErrorTests
{
    private static readonly TargetModules AllSix = TargetModules.Suffixes(CollectionBlock.LayerNames);

    [Fact]
    public void TargetsThatMatchNothingListTheLinearLayers()
    {
        using var model = new CollectionBlock();
        var ex = Assert.Throws<ArgumentException>(() => new ActivationCovarianceCollector(model, TargetModules.Suffixes("gate_proj")));
        Assert.Contains("q_proj", ex.Message);
        Assert.Contains("down_proj", ex.Message);
        Assert.Equal(0, ActivationCovarianceCollectorTests.PostHookCount(model.q_proj));
    }

    [Fact]
    public void LayerThatNeverFiredIsNamedWithTheForwardHint()
    {
        using var model = new ForwardCallingModel();
        using var collector = new ActivationCovarianceCollector(model, TargetModules.AllLinear());
        model.call(CollectionTestData.Randn(1, 2, 3, 4));
        var ex = Assert.Throws<InvalidOperationException>(() => collector.ToCovarianceSet());
        Assert.Contains("second", ex.Message);
        Assert.DoesNotContain("first,", ex.Message);
        Assert.Contains(".forward()", ex.Message);
        Assert.Contains("call()", ex.Message);
    }

    [Fact]
    public void NoForwardAtAllNamesEveryLayer()
    {
        using var model = new CollectionBlock();
        using var collector = new ActivationCovarianceCollector(model, AllSix);
        var ex = Assert.Throws<InvalidOperationException>(() => collector.ToCovarianceSet());
        foreach (var layer in CollectionBlock.LayerNames)
        {
            Assert.Contains(layer, ex.Message);
        }
    }

    [Fact]
    public void NoTokensCollectedThrows()
    {
        using var model = new CollectionBlock();
        using var collector = new ActivationCovarianceCollector(model, AllSix);
        collector.SetTokenMask(zeros(2, 3, dtype: ScalarType.Bool));
        model.call(CollectionTestData.Randn(2, 2, 3, CollectionBlock.Width));
        var ex = Assert.Throws<InvalidOperationException>(() => collector.ToCovarianceSet());
        Assert.Contains("No tokens", ex.Message);
    }

    [Fact]
    public void NonFiniteActivationsThrowFromTheForwardNamingTheLayer()
    {
        using var model = new CollectionBlock();
        using var collector = new ActivationCovarianceCollector(model, TargetModules.Suffixes("o_proj", "up_proj"));
        var x = CollectionTestData.Randn(3, 1, 3, CollectionBlock.Width);
        x[0, 1, 2] = tensor(double.PositiveInfinity);
        var ex = Assert.Throws<ArgumentException>(() => model.call(x));
        Assert.Contains("o_proj", ex.Message);
        Assert.Contains("NaN", ex.Message);
        Assert.Contains("Check the model", ex.Message);
    }

    [Fact]
    public void NonFiniteValuesInMaskedTokensAreIgnored()
    {
        using var model = new CollectionBlock();
        using var collector = new ActivationCovarianceCollector(model, AllSix);
        var x = CollectionTestData.Randn(4, 1, 3, CollectionBlock.Width);
        x[0, 2] = full(CollectionBlock.Width, double.NaN, ScalarType.Float64);
        collector.SetTokenMask(tensor(new[] { 1, 1, 0 }).reshape(1, 3));
        model.call(x);
        using var set = collector.ToCovarianceSet();
        Assert.Equal(2, set["q_proj"].TokenCount);
        Assert.True(isfinite(set["down_proj"].Sum).all().item<bool>());
    }

    [Fact]
    public void MaskOfTheWrongShapeNamesTheLayerAndBothShapes()
    {
        using var model = new CollectionBlock();
        using var collector = new ActivationCovarianceCollector(model, AllSix);
        collector.SetTokenMask(ones(2, 4, dtype: ScalarType.Bool));
        var ex = Assert.Throws<ArgumentException>(() => model.call(CollectionTestData.Randn(5, 2, 3, CollectionBlock.Width)));
        Assert.Contains("q_proj", ex.Message);
        Assert.Contains("[2, 4]", ex.Message);
        Assert.Contains("[2, 3, 6]", ex.Message);
    }

    [Fact]
    public void MaskWithValuesOtherThanZeroAndOneIsRejected()
    {
        using var model = new CollectionBlock();
        using var collector = new ActivationCovarianceCollector(model, AllSix);
        var ex = Assert.Throws<ArgumentException>(() => collector.SetTokenMask(tensor(new[] { 0, 2, 1 }).reshape(1, 3)));
        Assert.Contains("0 and 1", ex.Message);
        collector.SetTokenMask(tensor(new[] { 0f, 1f, 1f }).reshape(1, 3));
    }

    [Fact]
    public void FewerTokensThanWidthLogsAWarningPerCovariance()
    {
        using var model = new CollectionBlock();
        model.eval();
        var logger = new RecordingLogger();
        using (var collector = new ActivationCovarianceCollector(model, AllSix, logger: logger))
        {
            model.call(CollectionTestData.Randn(6, 1, 8, CollectionBlock.Width)); // 8 tokens: >= 6 but < 10 (down_proj)
            using var set = collector.ToCovarianceSet();
        }

        var warnings = logger.Entries.Where(e => e.EventId.Id == 101).ToList();
        var warning = Assert.Single(warnings);
        Assert.Equal(LogLevel.Warning, warning.Level);
        Assert.Contains("down_proj", warning.Message);
        Assert.Contains("8 tokens", warning.Message);
        Assert.DoesNotContain(logger.Entries, e => e.EventId.Id == 102); // eval mode: no training-mode warning

        var enough = new RecordingLogger();
        using (var collector = new ActivationCovarianceCollector(model, AllSix, logger: enough))
        {
            model.call(CollectionTestData.Randn(7, 2, 8, CollectionBlock.Width));
            using var set = collector.ToCovarianceSet();
        }

        Assert.DoesNotContain(enough.Entries, e => e.EventId.Id == 101);
    }

    [Fact]
    public void TrainingModeLogsAWarning()
    {
        using var model = new CollectionBlock();
        model.train();
        var logger = new RecordingLogger();
        using var collector = new ActivationCovarianceCollector(model, AllSix, logger: logger);
        Assert.Contains(logger.Entries, e => e.EventId.Id == 102 && e.Level == LogLevel.Warning);
    }
}
