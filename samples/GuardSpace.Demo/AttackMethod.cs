using System.Globalization;
using GuardSpace.Adapters;
using GuardSpace.Projection;

namespace GuardSpace.Demo;

/// <summary>
/// One attack method: a library configuration (initialisation, null-space rule, drift penalty) plus the demo-side
/// extras (AsFT regulariser). Parsed from <c>--methods</c>: a preset key, optionally followed by settings,
/// <c>key@setting=value;setting=value</c>, for example <c>asft@lambda=10</c> or <c>guardspace@energy=0.999;drift=30</c>.
/// </summary>
public sealed record AttackMethod(string Key, string Name, InitializationMethod Init)
{
    /// <summary>The <c>--methods</c> entry this method was parsed from.</summary>
    public string Spec { get; init; } = Key;

    /// <summary>AsFT's penalty weight, or null when the method is not AsFT.</summary>
    public double? AsftLambda { get; init; }

    /// <summary>Changes to the library's options, applied after the preset's (the settings of the spec).</summary>
    public IReadOnlyDictionary<string, string> Settings { get; init; } = new Dictionary<string, string>(StringComparer.Ordinal);

    /// <summary>
    /// Whether the harmful covariance also covers the aligned refusal's tokens after each null-set prompt: the demo's
    /// <c>--null-set-answers</c> choice, unless the method's <c>refusal=0|1</c> setting overrides it.
    /// </summary>
    public bool NullSetWithRefusals(bool demoDefault) => Settings.TryGetValue("refusal", out var v) ? v is "1" or "true" : demoDefault;

    /// <summary>Weight of the refusal-anchor loss (<c>anchor=beta</c>): cross-entropy of the aligned refusal on a few null-set prompts per step; 0 when off.</summary>
    public double AnchorWeight => Settings.TryGetValue("anchor", out var v) ? Double(v, "anchor") : 0;

    /// <summary>
    /// Whether training runs under the library's <see cref="GuardSpace.Behaviour.RefusalConstraint"/> (<c>constraint=0|1</c>):
    /// on by default for the default preset <c>guardspace</c>, off for every other.
    /// </summary>
    public bool Constrained => Settings.TryGetValue("constraint", out var v) ? v is "1" or "true" : Key == "guardspace";

    /// <summary>
    /// The poison screen's policy (<c>screen=off|keep|drop|relabel</c>), or null when the data is not screened: Drop (the
    /// library's default policy) for the default preset <c>guardspace</c>, off for every other.
    /// </summary>
    public GuardSpace.Behaviour.ScreenPolicy? Screen => Settings.TryGetValue("screen", out var v)
        ? v == "off" ? null : Enum.Parse<GuardSpace.Behaviour.ScreenPolicy>(v, ignoreCase: true)
        : Key == "guardspace" ? GuardSpace.Behaviour.ScreenPolicy.Drop : null;

    /// <summary>The refusal constraint's options: the library's defaults, with <c>tolerance=x</c> if given.</summary>
    public GuardSpace.Behaviour.RefusalConstraintOptions ConstraintOptions()
    {
        var options = new GuardSpace.Behaviour.RefusalConstraintOptions();
        if (Settings.TryGetValue("tolerance", out var v))
        {
            options.Tolerance = Double(v, "tolerance");
        }

        return options;
    }

    /// <summary>The default method list of the demo.</summary>
    public static readonly string[] Defaults = ["lora", "asft", "guardspace-official", "guardspace"];

    /// <summary>Every preset key.</summary>
    public static readonly string[] Presets = ["lora", "pissa", "milora", "corda", "nullspace", "asft", "guardspace-official", "guardspace"];

    public static AttackMethod Parse(string spec, double defaultAsftLambda)
    {
        var at = spec.IndexOf('@', StringComparison.Ordinal);
        var key = at < 0 ? spec : spec[..at];
        var settings = new Dictionary<string, string>(StringComparer.Ordinal);
        if (at >= 0)
        {
            foreach (var pair in spec[(at + 1)..].Split(';', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
            {
                var eq = pair.IndexOf('=', StringComparison.Ordinal);
                if (eq <= 0)
                {
                    throw new ArgumentException($"--methods: setting '{pair}' of '{spec}' is not name=value");
                }

                settings[pair[..eq]] = pair[(eq + 1)..];
            }
        }

        var method = key switch
        {
            "lora" => new AttackMethod(key, "LoRA", InitializationMethod.Lora),
            "pissa" => new AttackMethod(key, "PiSSA", InitializationMethod.PiSSA),
            "milora" => new AttackMethod(key, "MiLoRA", InitializationMethod.MiLoRA),
            "corda" => new AttackMethod(key, "CorDA-KPM", InitializationMethod.CorDAKpm),
            "nullspace" => new AttackMethod(key, "NullSpace-LoRA", InitializationMethod.NullSpaceLora),
            "asft" => new AttackMethod(key, "AsFT", InitializationMethod.Lora) { AsftLambda = defaultAsftLambda },
            "guardspace-official" => new AttackMethod(key, "GuardSpace-official", InitializationMethod.GuardSpace),
            "guardspace" => new AttackMethod(key, "GuardSpace", new GuardedLoraOptions().Method), // the library's default adapters
            _ => throw new ArgumentException($"--methods: unknown method '{key}' (one of {string.Join(", ", Presets)})"),
        };
        method = method with { Spec = spec };
        if (settings.Remove("lambda", out var lambda))
        {
            method = method with { AsftLambda = Double(lambda, "lambda") };
            if (settings.Count == 0)
            {
                return method with { Name = $"{method.Name} (lambda {lambda})" };
            }
        }

        if (settings.Count == 0)
        {
            return method;
        }

        var name = settings.Remove("name", out var given) ? given : $"{method.Name} ({string.Join(", ", settings.Select(s => $"{s.Key} {s.Value}"))})";
        var variant = method with { Name = name, Settings = settings };
        variant.Configure(new GuardedLoraOptions()); // fail fast on unknown settings
        return variant;
    }

    /// <summary>The library's options for this method.</summary>
    public GuardedLoraOptions Options(int rank, int seed)
    {
        // Every method keeps the harmful covariance factors, so the demo can plot the safety monitor for all of them.
        var options = Key == "guardspace-official" ? GuardedLoraOptions.Official() : new GuardedLoraOptions { Method = Init };
        (options.Rank, options.Seed, options.TrackHarmfulDrift) = (rank, seed, true);
        Configure(options);
        return options;
    }

    private void Configure(GuardedLoraOptions o)
    {
        foreach (var (k, v) in Settings)
        {
            switch (k)
            {
                case "rule": o.NullSpace.Rule = Enum.Parse<NullSpaceThresholdRule>(v, ignoreCase: true); break;
                case "energy": o.NullSpace.Rule = NullSpaceThresholdRule.EnergyFraction; o.NullSpace.EnergyFraction = Double(v, k); break;
                case "relative": o.NullSpace.Rule = NullSpaceThresholdRule.Relative; o.NullSpace.RelativeThreshold = Double(v, k); break;
                case "absolute": o.NullSpace.Rule = NullSpaceThresholdRule.Absolute; o.NullSpace.AbsoluteThreshold = Double(v, k); break;
                case "fallback": o.NullSpace.EmptyPolicy = EmptyNullSpacePolicy.FallBackToEnergy; o.NullSpace.EnergyFraction = Double(v, k); break;
                case "drift": o.HarmfulDriftPenalty = Double(v, k); break;
                case "minnull": o.NullSpace.MinimumNullFraction = Double(v, k); break;
                case "floor": o.HarmfulDriftFloor = Double(v, k); break;
                case "refusal": break; // demo side: see NullSetWithRefusals
                case "anchor": break; // demo side: see AnchorWeight
                case "constraint": break; // demo side: see Constrained
                case "tolerance": break; // demo side: see ConstraintOptions
                case "screen":
                    if (v != "off" && !Enum.TryParse<GuardSpace.Behaviour.ScreenPolicy>(v, ignoreCase: true, out _))
                    {
                        throw new ArgumentException($"--methods: screen={v} is not off, keep, drop or relabel");
                    }

                    break;
                case "attnofficial": o.NullSpaceOverrides.Add(new NullSpaceOverride(GuardSpace.Targeting.TargetModules.Suffixes("q_proj", "k_proj", "v_proj", "o_proj"), new NullSpaceOptions())); break;
                case "targets": o.Targets = GuardSpace.Targeting.TargetModules.Suffixes(v.Split('+')); break;
                default: throw new ArgumentException($"--methods: unknown setting '{k}' in '{Key}' (rule, energy, relative, absolute, fallback, drift, minnull, floor, refusal, anchor, constraint, tolerance, screen, targets, attnofficial, lambda, name)");
            }
        }
    }

    private static double Double(string v, string k) =>
        double.TryParse(v, NumberStyles.Float, CultureInfo.InvariantCulture, out var d) ? d : throw new ArgumentException($"--methods: {k}={v} is not a number");
}
