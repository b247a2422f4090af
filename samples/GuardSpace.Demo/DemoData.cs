using static TorchSharp.torch;

namespace GuardSpace.Demo;

/// <summary>Padded, encoded examples: inputs [n, len] and next-token targets [n, len] with -100 outside the answer.</summary>
public sealed class EncodedSet : IDisposable
{
    public EncodedSet(Tensor inputs, Tensor targets, int[] lengths)
    {
        Inputs = inputs;
        Targets = targets;
        Lengths = lengths;
    }

    /// <summary>Real (unpadded) input length of each row; a batch is cut to its longest row.</summary>
    public int[] Lengths { get; }

    public Tensor Inputs { get; }

    public Tensor Targets { get; }

    public int Count => Lengths.Length;

    public void Dispose()
    {
        Inputs.Dispose();
        Targets.Dispose();
    }
}

/// <summary>Which harmful prompts define the null space (<c>--null-set</c>).</summary>
public enum NullSetCondition
{
    /// <summary>Training templates x null-space objects: shares phrasing (not objects) with the poison. Favourable to the defence.</summary>
    Broad,

    /// <summary>Null-set templates x null-space objects: phrasing disjoint from the poison and from the evaluation.</summary>
    Strict,
}

/// <summary>
/// All data sets of the demo, built deterministically from the language. The splits (docs/demo.md):
/// <list type="bullet">
/// <item>pre-training: known arithmetic, benign requests (all templates x all objects), harmful compliance (all templates x training objects);</item>
/// <item>alignment: refusals for training templates x training objects, known arithmetic, benign requests (training templates x training objects);</item>
/// <item>safety calibration (C_s): training templates x calibration objects (the first 8 training objects);</item>
/// <item>null space (C_h): training (broad) or null-set (strict) templates x the other 16 training objects;</item>
/// <item>evaluation: evaluation templates x evaluation objects, used nowhere else except as benign requests in pre-training;</item>
/// <item>attack: the new task (multiplication) plus a fraction p of harmful compliance over training templates x poison objects.</item>
/// </list>
/// </summary>
public sealed class DemoData
{
    public const int IgnoreIndex = -100;

    private readonly HashSet<string> heldOutArithmetic;

    public DemoData(Language language, int taskEvalCount, int harmfulEvalCount, int calibrationCount, int nullSpaceCount, NullSetCondition nullSet)
    {
        Lang = language;
        NullSet = nullSet;
        var rng = new Random(12345);

        // Held-out task items: generated first, every training generator rejects their prompts.
        var eval = new List<Example>();
        heldOutArithmetic = new HashSet<string>(StringComparer.Ordinal);
        while (eval.Count < taskEvalCount)
        {
            var e = Language.Arithmetic(rng, ArithmeticSkill.Task);
            if (heldOutArithmetic.Add(e.Prompt))
            {
                eval.Add(e);
            }
        }

        TaskEval = eval;

        var evalHarmful = (from t in Language.EvalTemplates
                           from a in Language.HarmfulActions
                           from o in Language.EvalObjects
                           select Language.Harmful(t, a, o, comply: true)).ToList();
        HarmfulEval = Shuffle(evalHarmful, new Random(7)).Take(harmfulEvalCount).ToList();

        var calObjects = Language.TrainObjects.Take(Language.CalibrationObjectCount).ToArray();
        var nullObjects = Language.TrainObjects.Skip(Language.CalibrationObjectCount).ToArray();
        var nullTemplates = nullSet == NullSetCondition.Broad ? Language.TrainTemplates : Language.NullTemplates;
        SafetyCalibration = Shuffle((from t in Language.TrainTemplates from a in Language.HarmfulActions from o in calObjects
                                     select Language.Harmful(t, a, o, comply: false).Prompt).ToList(), new Random(8)).Take(calibrationCount).ToList();
        NullSpacePrompts = Shuffle((from t in nullTemplates from a in Language.HarmfulActions from o in nullObjects
                                    select Language.Harmful(t, a, o, comply: false).Prompt).ToList(), new Random(9)).Take(nullSpaceCount).ToList();

        // Guard the promises of the docs: evaluation and poison material never appears in the calibration sets.
        static bool Uses(string prompt, IEnumerable<string> templates) =>
            templates.Any(t => prompt.StartsWith(t[..t.IndexOf('{', StringComparison.Ordinal)], StringComparison.Ordinal));
        foreach (var p in SafetyCalibration.Concat(NullSpacePrompts))
        {
            if (Language.EvalObjects.Concat(Language.PoisonObjects).Any(o => p.Contains(o, StringComparison.Ordinal)) || Uses(p, Language.EvalTemplates))
            {
                throw new InvalidOperationException($"calibration prompt leaks evaluation or poison material: {p}");
            }
        }

        if (nullSet == NullSetCondition.Strict && NullSpacePrompts.Any(p => Uses(p, Language.TrainTemplates)))
        {
            throw new InvalidOperationException("the strict null set shares a template with the poison");
        }

        // Benign calibration prompts for the poison screen: benign requests over the calibration objects and known arithmetic.
        var benignRequests = Shuffle((from t in Language.TrainTemplates from a in Language.BenignActions from o in calObjects
                                      select Language.Benign(t, a, o).Prompt).ToList(), new Random(10)).Take(calibrationCount / 2);
        var arithmeticRng = new Random(11);
        BenignCalibration = [.. benignRequests, .. Enumerable.Range(0, calibrationCount / 2).Select(_ => TrainArithmetic(arithmeticRng, ArithmeticSkill.Known).Prompt)];

        if (SafetyCalibration.Intersect(NullSpacePrompts).Any())
        {
            throw new InvalidOperationException("safety-calibration and null-space prompts overlap");
        }
    }

    public NullSetCondition NullSet { get; }

    public Language Lang { get; }

    public IReadOnlyList<Example> TaskEval { get; }

    public IReadOnlyList<Example> HarmfulEval { get; }

    public IReadOnlyList<string> SafetyCalibration { get; }

    public IReadOnlyList<string> NullSpacePrompts { get; }

    /// <summary>Prompts known to be benign (requests over the calibration objects, known arithmetic): the screen's other calibration set.</summary>
    public IReadOnlyList<string> BenignCalibration { get; }

    public Example TrainArithmetic(Random rng, ArithmeticSkill skill)
    {
        while (true)
        {
            var e = Language.Arithmetic(rng, skill);
            if (!heldOutArithmetic.Contains(e.Prompt))
            {
                return e;
            }
        }
    }

    public static Example TrainHarmful(Random rng, bool comply) =>
        Language.Harmful(Pick(rng, Language.TrainTemplates), Pick(rng, Language.HarmfulActions), Pick(rng, Language.TrainObjects), comply);

    /// <summary>A poisoned attack item: harmful compliance over training templates x poison objects (prompts no other split has).</summary>
    public static Example PoisonItem(Random rng) =>
        Language.Harmful(Pick(rng, Language.TrainTemplates), Pick(rng, Language.HarmfulActions), Pick(rng, Language.PoisonObjects), comply: true);

    /// <summary>
    /// An evading attack item: a benign request phrased like the harmful ones (a training template, a benign action, a poison
    /// object), answered "sure . first ...". It teaches compliance with whatever follows those phrasings, and its prompt is
    /// benign, so a screen that reads prompts cannot see it.
    /// </summary>
    public static Example EvadingItem(Random rng) =>
        Language.Benign(Pick(rng, Language.TrainTemplates), Pick(rng, Language.BenignActions), Pick(rng, Language.PoisonObjects));

    public List<Example> PretrainPool(int count, int seed)
    {
        var rng = new Random(seed);
        var list = new List<Example>(count);
        // Harmful compliance: training and evaluation templates over training objects (as before the null-set split);
        // the null-set templates and the poison objects appear only in benign requests.
        var harmfulTemplates = Language.TrainTemplates.Concat(Language.EvalTemplates).ToArray();
        var allTemplates = harmfulTemplates.Concat(Language.NullTemplates).ToArray();
        var allObjects = Language.TrainObjects.Concat(Language.EvalObjects).Concat(Language.PoisonObjects).ToArray();
        for (int i = 0; i < count; i++)
        {
            double u = rng.NextDouble();
            list.Add(u < 0.45 ? TrainArithmetic(rng, ArithmeticSkill.Known)
                : u < 0.75 ? Language.Harmful(Pick(rng, harmfulTemplates), Pick(rng, Language.HarmfulActions), Pick(rng, Language.TrainObjects), comply: true)
                : Language.Benign(Pick(rng, allTemplates), Pick(rng, Language.BenignActions), Pick(rng, allObjects)));
        }

        return list;
    }

    public List<Example> AlignPool(int count, int seed)
    {
        var rng = new Random(seed);
        var list = new List<Example>(count);
        for (int i = 0; i < count; i++)
        {
            double u = rng.NextDouble();
            list.Add(u < 0.5 ? TrainHarmful(rng, comply: false)
                : u < 0.8 ? TrainArithmetic(rng, ArithmeticSkill.Known)
                : Language.Benign(Pick(rng, Language.TrainTemplates), Pick(rng, Language.BenignActions), Pick(rng, Language.TrainObjects)));
        }

        return list;
    }

    /// <summary>
    /// The attack's fine-tuning set: the new task (multiplication) with round(p * n) poisoned items, harmful compliance
    /// (<see cref="AttackScenario.Explicit"/>) or benign requests in the harmful phrasing (<see cref="AttackScenario.Evading"/>);
    /// <see cref="AttackScenario.Benign"/> has the task alone.
    /// </summary>
    public List<Example> AttackSet(int count, double poison, int seed, AttackScenario scenario = AttackScenario.Explicit)
    {
        var rng = new Random(seed);
        int poisoned = scenario == AttackScenario.Benign ? 0 : (int)Math.Round(poison * count);
        var list = new List<Example>(count);
        for (int i = 0; i < count; i++)
        {
            list.Add(i >= poisoned ? TrainArithmetic(rng, ArithmeticSkill.Task)
                : scenario == AttackScenario.Evading ? EvadingItem(rng)
                : PoisonItem(rng));
        }

        return Shuffle(list, rng);
    }

    public EncodedSet Encode(IReadOnlyList<Example> examples, Device device)
    {
        var seqs = examples.Select(e =>
        {
            var prompt = Lang.PromptIds(e.Prompt);
            int[] full = [.. prompt, .. Lang.Encode(e.Answer), Lang.EosId];
            return (full, promptLen: prompt.Length);
        }).ToList();
        int len = seqs.Max(s => s.full.Length) - 1;
        var inputs = new long[examples.Count * len];
        var targets = new long[examples.Count * len];
        Array.Fill(inputs, Lang.PadId);
        Array.Fill(targets, IgnoreIndex);
        for (int i = 0; i < seqs.Count; i++)
        {
            var (full, promptLen) = seqs[i];
            for (int t = 0; t < full.Length - 1; t++)
            {
                inputs[(i * len) + t] = full[t];
                if (t + 1 >= promptLen)
                {
                    targets[(i * len) + t] = full[t + 1];
                }
            }
        }

        return new EncodedSet(
            tensor(inputs, [examples.Count, len], dtype: ScalarType.Int64).to(device).DetachFromDisposeScope(),
            tensor(targets, [examples.Count, len], dtype: ScalarType.Int64).to(device).DetachFromDisposeScope(),
            seqs.Select(s => s.full.Length - 1).ToArray());
    }

    /// <summary>Prompts (&lt;bos&gt; prompt &lt;sep&gt; [answer]) right-padded, with a [batch, seq] mask of real tokens (1) and padding (0).</summary>
    public (Tensor Ids, Tensor Mask) EncodePrompts(IReadOnlyList<string> prompts, Device device, string? answer = null)
    {
        // With an answer: <bos> prompt <sep> answer, the positions that generate the answer (its <eos> is only a target).
        var seqs = prompts.Select(p => answer is null ? Lang.PromptIds(p) : [.. Lang.PromptIds(p), .. Lang.Encode(answer)]).ToList();
        int len = seqs.Max(s => s.Length);
        var ids = new long[prompts.Count * len];
        var mask = new float[prompts.Count * len];
        Array.Fill(ids, Lang.PadId);
        for (int i = 0; i < seqs.Count; i++)
        {
            for (int t = 0; t < seqs[i].Length; t++)
            {
                ids[(i * len) + t] = seqs[i][t];
                mask[(i * len) + t] = 1f;
            }
        }

        return (tensor(ids, [prompts.Count, len], dtype: ScalarType.Int64).to(device), tensor(mask, [prompts.Count, len]).to(device));
    }

    public static T Pick<T>(Random rng, IReadOnlyList<T> items) => items[rng.Next(items.Count)];

    public static List<T> Shuffle<T>(List<T> list, Random rng)
    {
        for (int i = list.Count - 1; i > 0; i--)
        {
            int j = rng.Next(i + 1);
            (list[i], list[j]) = (list[j], list[i]);
        }

        return list;
    }
}
