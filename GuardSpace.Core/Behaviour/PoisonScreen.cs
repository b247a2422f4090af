using GuardSpace.Diagnostics;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace GuardSpace.Behaviour;

/// <summary>
/// Screens fine-tuning data with the aligned model before training: an example whose prompt the aligned model would refuse
/// is a likely poison, to keep, drop or relabel with the refusal (<see cref="ScreenPolicy"/>). Model-agnostic: the caller
/// scores each prompt ("refusal score": higher means the aligned model leans more towards refusing, for example the mean
/// log-probability of its refusal given the prompt), and the threshold is calibrated on scores of prompts known to be
/// harmful and known to be benign. A screen is evaded by poison the aligned model does not recognise, so it complements a
/// <see cref="RefusalConstraint"/> and never replaces it.
/// </summary>
public sealed class PoisonScreen
{
    /// <summary>A balanced calibration error above this share is logged as a warning: the screen would miss poison or flag benign data.</summary>
    private const double PoorSeparation = 0.1;

    private readonly ILogger _logger;

    private PoisonScreen(double threshold, double missRate, double falseFlagRate, ILogger logger)
    {
        Threshold = threshold;
        CalibrationMissRate = missRate;
        CalibrationFalseFlagRate = falseFlagRate;
        _logger = logger;
    }

    /// <summary>Examples whose refusal score is at least this are flagged.</summary>
    public double Threshold { get; }

    /// <summary>The share of harmful calibration prompts the threshold does not flag.</summary>
    public double CalibrationMissRate { get; }

    /// <summary>The share of benign calibration prompts the threshold flags.</summary>
    public double CalibrationFalseFlagRate { get; }

    /// <summary>
    /// Chooses the threshold that minimises the balanced error on the calibration scores (the mean of the harmful miss rate and
    /// the benign false-flag rate), placed halfway between the two calibration scores it separates; of equally good
    /// thresholds the lowest (it misses the least poison).
    /// </summary>
    /// <param name="harmfulScores">Refusal scores of prompts known to be harmful (the harmful calibration prompts).</param>
    /// <param name="benignScores">Refusal scores of prompts known to be benign.</param>
    /// <param name="logger">Receives the calibration and a warning when the scores hardly separate the two sets.</param>
    /// <exception cref="ArgumentException">Either set is empty or holds a score that is not finite.</exception>
    public static PoisonScreen Calibrate(IReadOnlyList<double> harmfulScores, IReadOnlyList<double> benignScores, ILogger? logger = null)
    {
        CheckScores(harmfulScores, nameof(harmfulScores), "harmful calibration prompts");
        CheckScores(benignScores, nameof(benignScores), "benign calibration prompts");
        logger ??= NullLogger.Instance;

        // Sweep the candidate thresholds in ascending order of score: every distinct score, and one above them all.
        var all = harmfulScores.Select(s => (Score: s, Harmful: true)).Concat(benignScores.Select(s => (Score: s, Harmful: false))).OrderBy(p => p.Score).ToList();
        int nh = harmfulScores.Count, nb = benignScores.Count;
        int harmfulBelow = 0, benignBelow = 0;
        var (bestError, bestIndex) = (double.PositiveInfinity, 0);
        for (var i = 0; i <= all.Count; i++)
        {
            if (i == 0 || i == all.Count || all[i].Score > all[i - 1].Score)
            {
                // A threshold between all[i-1] and all[i]: everything below is not flagged.
                var error = 0.5 * (((double)harmfulBelow / nh) + ((double)(nb - benignBelow) / nb));
                if (error < bestError)
                {
                    (bestError, bestIndex) = (error, i);
                }
            }

            if (i < all.Count)
            {
                _ = all[i].Harmful ? harmfulBelow++ : benignBelow++;
            }
        }

        var threshold = bestIndex == 0 ? all[0].Score
            : bestIndex == all.Count ? double.PositiveInfinity
            : all[bestIndex - 1].Score + (0.5 * (all[bestIndex].Score - all[bestIndex - 1].Score));
        var miss = harmfulScores.Count(s => s < threshold) / (double)nh;
        var falseFlags = benignScores.Count(s => s >= threshold) / (double)nb;
        Log.ScreenCalibrated(logger, threshold, nh, nb, miss, falseFlags);
        if (0.5 * (miss + falseFlags) > PoorSeparation)
        {
            Log.ScreenSeparatesPoorly(logger, miss, falseFlags);
        }

        return new PoisonScreen(threshold, miss, falseFlags, logger);
    }

    /// <summary>True when <paramref name="refusalScore"/> reaches the threshold.</summary>
    public bool IsFlagged(double refusalScore) => refusalScore >= Threshold;

    /// <summary>Flags the examples whose score reaches the threshold and applies <paramref name="policy"/>.</summary>
    /// <param name="items">The training examples.</param>
    /// <param name="refusalScores">Their refusal scores, one per example, from the same scorer as the calibration.</param>
    /// <param name="policy">What to do with flagged examples.</param>
    /// <param name="relabel">For <see cref="ScreenPolicy.Relabel"/>: the flagged example's replacement (its prompt with the aligned refusal, for example).</param>
    /// <exception cref="ArgumentException">The counts differ, a score is not finite, or Relabel comes without <paramref name="relabel"/>.</exception>
    public ScreenResult<T> Apply<T>(IReadOnlyList<T> items, IReadOnlyList<double> refusalScores, ScreenPolicy policy = ScreenPolicy.Drop, Func<T, T>? relabel = null)
    {
        ArgumentNullException.ThrowIfNull(items);
        ArgumentNullException.ThrowIfNull(refusalScores);
        if (items.Count != refusalScores.Count)
        {
            throw new ArgumentException($"The screen got {items.Count} examples but {refusalScores.Count} refusal scores; score every example once, in order.", nameof(refusalScores));
        }

        if (!Enum.IsDefined(policy))
        {
            throw new ArgumentException($"{policy} is not a ScreenPolicy (Keep, Drop, Relabel).", nameof(policy));
        }

        if (policy == ScreenPolicy.Relabel && relabel is null)
        {
            throw new ArgumentException("ScreenPolicy.Relabel needs a relabel function (for example: the prompt with the aligned model's refusal).", nameof(relabel));
        }

        CheckScores(refusalScores, nameof(refusalScores), "training examples", allowEmpty: true);
        var flagged = Enumerable.Range(0, items.Count).Where(i => IsFlagged(refusalScores[i])).ToList();
        var flaggedSet = flagged.ToHashSet();
        IReadOnlyList<T> kept = policy switch
        {
            ScreenPolicy.Keep => [.. items],
            ScreenPolicy.Drop => [.. items.Where((_, i) => !flaggedSet.Contains(i))],
            _ => [.. items.Select((item, i) => flaggedSet.Contains(i) ? relabel!(item) : item)],
        };
        Log.ScreenApplied(_logger, flagged.Count, items.Count, policy.ToString());
        return new ScreenResult<T>(kept, flagged, Threshold, policy);
    }

    private static void CheckScores(IReadOnlyList<double> scores, string parameter, string what, bool allowEmpty = false)
    {
        ArgumentNullException.ThrowIfNull(scores, parameter);
        if (!allowEmpty && scores.Count == 0)
        {
            throw new ArgumentException($"The screen needs refusal scores of at least one of the {what}; got none.", parameter);
        }

        for (var i = 0; i < scores.Count; i++)
        {
            if (!double.IsFinite(scores[i]))
            {
                throw new ArgumentException($"Refusal score {i} of the {what} is {scores[i]}; every score must be finite (check the scorer on that prompt).", parameter);
            }
        }
    }
}
