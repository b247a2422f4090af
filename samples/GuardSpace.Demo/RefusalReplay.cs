using GuardSpace.Behaviour;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace GuardSpace.Demo;

/// <summary>
/// The aligned model's own refusals, as replay data for the <see cref="RefusalConstraint"/>: its greedy answers to the
/// harmful calibration prompts (the safety-calibration and null-space prompts, never an evaluation or poison prompt), kept
/// where the judge reads them as a refusal, split into a training part and a validation part. Built once per run on the
/// aligned model; the objective's callbacks then run on whatever model they are given.
/// </summary>
public sealed class RefusalReplay : IDisposable
{
    /// <summary>Refusal pairs per training batch: a quarter of the task batch (the replay's cost is stated in docs/demo.md).</summary>
    private const int BatchDivisor = 4;

    /// <summary>Validation pairs at most: the loss is read every 10 steps, so its pass is kept small (64 prompts, about 450 answer tokens).</summary>
    private const int MaxValidation = 64;

    private readonly DemoData data;
    private readonly EncodedSet train;
    private readonly EncodedSet validation;
    private readonly IReadOnlyList<string> validationPrompts;

    private RefusalReplay(DemoData data, EncodedSet train, EncodedSet validation, IReadOnlyList<string> validationPrompts)
    {
        this.data = data;
        this.train = train;
        this.validation = validation;
        this.validationPrompts = validationPrompts;
    }

    /// <summary>Training pairs.</summary>
    public int TrainCount => train.Count;

    /// <summary>Validation pairs.</summary>
    public int ValidationCount => validation.Count;

    /// <summary>Greedy answers of <paramref name="aligned"/> to every harmful calibration prompt; one in four refusals (at most 64) goes to validation.</summary>
    public static RefusalReplay Build(Module<Tensor, Tensor> aligned, DemoData data, Device device)
    {
        var prompts = data.SafetyCalibration.Concat(data.NullSpacePrompts).ToList();
        var answers = Trainer.Greedy(aligned, data.Lang, prompts, data.Lang.RefusalIds.Length + 1, device);
        var pairs = prompts.Zip(answers)
            .Where(p => data.Lang.IsRefusal(p.Second))
            .Select(p => new Example(p.First, data.Lang.Decode(p.Second), ExampleKind.HarmfulRefusal))
            .ToList();
        if (pairs.Count < 2)
        {
            throw new InvalidOperationException($"The aligned model refuses only {pairs.Count} of the {prompts.Count} harmful calibration prompts: there is no refusal behaviour to keep.");
        }

        DemoData.Shuffle(pairs, new Random(31));
        int nVal = Math.Clamp(pairs.Count / 4, 1, MaxValidation);
        var val = pairs.Take(nVal).ToList();
        var tr = pairs.Skip(nVal).ToList();
        return new RefusalReplay(data, data.Encode(tr, device), data.Encode(val, device), [.. val.Select(p => p.Prompt)]);
    }

    /// <summary>The constraint's callbacks for <paramref name="model"/>: a random training batch, the whole validation split, and the refusal rate by greedy decoding.</summary>
    public RefusalObjective Objective(Module<Tensor, Tensor> model, int taskBatch, int seed)
    {
        var rng = new Random(seed + 77);
        int batch = Math.Max(1, taskBatch / BatchDivisor);
        return new RefusalObjective
        {
            BatchLoss = () => Trainer.BatchLoss(model, train, batch, rng),
            ValidationLoss = () => Trainer.SetLoss(model, validation),
            ValidationRefusalRate = () => Trainer.RefusalRate(model, data.Lang, validationPrompts, validation.Inputs.device),
        };
    }

    public void Dispose()
    {
        train.Dispose();
        validation.Dispose();
    }
}
