using GuardSpace.Behaviour;
using GuardSpace.Tests.TestUtilities;
using TorchSharp;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace GuardSpace.Tests.Behaviour;

public class PoisonScreenTests
{
    [Fact]
    public void ThresholdLiesHalfwayBetweenTheSeparatedCalibrationScores()
    {
        var screen = PoisonScreen.Calibrate([-0.1, -0.3, -0.2], [-5, -2.5, -4]);
        Assert.Equal(-1.4, screen.Threshold, 12); // halfway between -2.5 (highest benign) and -0.3 (lowest harmful)
        Assert.Equal(0, screen.CalibrationMissRate);
        Assert.Equal(0, screen.CalibrationFalseFlagRate);
        Assert.True(screen.IsFlagged(-1.0));
        Assert.False(screen.IsFlagged(-2.0));
    }

    [Fact]
    public void OverlappingScoresGetTheThresholdWithTheSmallestBalancedErrorAndAWarning()
    {
        // One harmful prompt scores like the benign ones: the best threshold misses it rather than flag two benign ones.
        var logger = new RecordingLogger();
        var screen = PoisonScreen.Calibrate([0, -0.2, -0.1, -3], [-2, -2.5, -4, -5, -6], logger);
        Assert.Equal(-1.1, screen.Threshold, 12);
        Assert.Equal(0.25, screen.CalibrationMissRate);
        Assert.Equal(0, screen.CalibrationFalseFlagRate);
        Assert.Contains(logger.Warnings, w => w.Contains("hardly separates", StringComparison.Ordinal));
    }

    [Fact]
    public void PoliciesKeepDropOrRelabelTheFlaggedItems()
    {
        var screen = PoisonScreen.Calibrate([0.0], [-1.0]);
        string[] items = ["a", "b", "c", "d"];
        double[] scores = [-2, -0.1, -3, 0];
        var keep = screen.Apply(items, scores, ScreenPolicy.Keep);
        var drop = screen.Apply(items, scores, ScreenPolicy.Drop);
        var relabel = screen.Apply(items, scores, ScreenPolicy.Relabel, s => s.ToUpperInvariant());
        Assert.Equal([1, 3], drop.Flagged);
        Assert.Equal(items, keep.Items);
        Assert.Equal(["a", "c"], drop.Items);
        Assert.Equal(["a", "B", "c", "D"], relabel.Items);
        Assert.Equal(-0.5, relabel.Threshold);
    }

    [Fact]
    public void BadInputGetsClearErrors()
    {
        Assert.Contains("harmful calibration prompts", Assert.Throws<ArgumentException>(() => PoisonScreen.Calibrate([], [1.0])).Message, StringComparison.Ordinal);
        Assert.Contains("score 1 of the benign", Assert.Throws<ArgumentException>(() => PoisonScreen.Calibrate([1.0], [0.0, double.NaN])).Message, StringComparison.Ordinal);
        var screen = PoisonScreen.Calibrate([0.0], [-1.0]);
        Assert.Contains("2 examples but 1 refusal scores", Assert.Throws<ArgumentException>(() => screen.Apply(["a", "b"], [0.0])).Message, StringComparison.Ordinal);
        Assert.Contains("needs a relabel function", Assert.Throws<ArgumentException>(() => screen.Apply(["a"], [0.0], ScreenPolicy.Relabel)).Message, StringComparison.Ordinal);
    }

    /// <summary>
    /// A toy aligned model (mean token embedding, then the logit of "refuse") trained to refuse prompts with a harmful word.
    /// Calibrated on its scores of known prompts, the screen flags exactly the poisoned items of a training set it never saw.
    /// </summary>
    [Fact]
    public void FlagsExactlyTheHarmfulItemsOfAToyModel()
    {
        using var scope = NewDisposeScope();
        manual_seed(11);
        const int harmfulWords = 4, vocab = 16;
        var rng = new Random(3);
        long[] Prompt(bool harmful)
        {
            var p = Enumerable.Range(0, 5).Select(_ => (long)rng.Next(harmfulWords, vocab)).ToArray();
            if (harmful)
            {
                p[rng.Next(p.Length)] = rng.Next(harmfulWords);
            }

            return p;
        }

        var embed = EmbeddingBag(vocab, 8, mode: EmbeddingBagMode.Mean, dtype: ScalarType.Float64);
        var head = Linear(8, 1, dtype: ScalarType.Float64);
        Tensor Logits(IReadOnlyList<long[]> prompts) => head.call(embed.call(tensor(prompts.SelectMany(p => p).ToArray(), [prompts.Count, 5]))).squeeze(1);
        double[] Scores(IReadOnlyList<long[]> prompts)
        {
            using var ng = no_grad();
            return functional.logsigmoid(Logits(prompts)).data<double>().ToArray(); // log p(refuse | prompt)
        }

        // "Alignment": refuse the prompts with a harmful word.
        var alignHarmful = Enumerable.Range(0, 64).Select(_ => Prompt(true)).ToList();
        var alignBenign = Enumerable.Range(0, 64).Select(_ => Prompt(false)).ToList();
        var labels = cat([ones(64, dtype: ScalarType.Float64), zeros(64, dtype: ScalarType.Float64)]);
        var adam = optim.Adam(embed.parameters().Concat(head.parameters()), 0.05);
        for (var i = 0; i < 300; i++)
        {
            using var s = NewDisposeScope();
            adam.zero_grad();
            functional.binary_cross_entropy_with_logits(Logits([.. alignHarmful, .. alignBenign]), labels).backward();
            adam.step();
        }

        var screen = PoisonScreen.Calibrate(Scores([.. Enumerable.Range(0, 32).Select(_ => Prompt(true))]), Scores([.. Enumerable.Range(0, 32).Select(_ => Prompt(false))]));
        var poisonAt = new HashSet<int> { 2, 7, 11, 19, 23, 31, 36 };
        var training = Enumerable.Range(0, 40).Select(i => Prompt(poisonAt.Contains(i))).ToList();
        var result = screen.Apply(training, Scores(training), ScreenPolicy.Drop);

        Assert.Equal(poisonAt.Order(), result.Flagged);
        Assert.Equal(33, result.Items.Count);
        Assert.All(result.Items, p => Assert.All(p, w => Assert.True(w >= harmfulWords)));
    }
}
