using System.Text.RegularExpressions;

namespace GuardSpace.Targeting;

/// <summary>How target <see cref="TorchSharp.Modules.Linear"/> layers are chosen inside a model.</summary>
public enum TargetMatchKind
{
    /// <summary>Full dotted module paths, matched exactly (for example <c>layers.0.attn.q_proj</c>).</summary>
    ExactNames,

    /// <summary>Last path segments: a layer matches when its path equals a suffix or ends with <c>"." + suffix</c> (PEFT's rule).</summary>
    Suffixes,

    /// <summary>A regular expression that must match the whole dotted module path.</summary>
    Regex,

    /// <summary>Every Linear layer except the output head (<see cref="TargetModules.OutputHeadNames"/>).</summary>
    AllLinearExceptHead,
}

/// <summary>
/// Selects the Linear layers GuardSpace collects covariances for and guards. Immutable; create with the
/// static factories (<see cref="Suffixes"/>, <see cref="ExactNames"/>, <see cref="Matching"/>, <see cref="AllLinear"/>).
/// </summary>
public sealed class TargetModules
{
    /// <summary>Output-head names excluded by <see cref="AllLinear"/> (matched as the last path segment).</summary>
    public static IReadOnlyList<string> DefaultOutputHeadNames { get; } = ["lm_head", "output", "head", "classifier", "score", "embed_out"];

    private TargetModules(TargetMatchKind kind, IReadOnlyList<string> patterns, IReadOnlyList<string> outputHeadNames)
    {
        Kind = kind;
        Patterns = patterns;
        OutputHeadNames = outputHeadNames;
    }

    /// <summary>The matching rule.</summary>
    public TargetMatchKind Kind { get; }

    /// <summary>The names, suffixes or the single regular expression, depending on <see cref="Kind"/>.</summary>
    public IReadOnlyList<string> Patterns { get; }

    /// <summary>For <see cref="TargetMatchKind.AllLinearExceptHead"/>: last path segments treated as the output head.</summary>
    public IReadOnlyList<string> OutputHeadNames { get; }

    /// <summary>Targets layers whose path equals one of <paramref name="suffixes"/> or ends with <c>"." + suffix</c>, e.g. <c>q_proj</c>.</summary>
    public static TargetModules Suffixes(params string[] suffixes) => new(TargetMatchKind.Suffixes, CheckPatterns(suffixes, nameof(suffixes)), []);

    /// <summary>Targets exactly the named layers (full dotted paths). Every name must exist.</summary>
    public static TargetModules ExactNames(params string[] names) => new(TargetMatchKind.ExactNames, CheckPatterns(names, nameof(names)), []);

    /// <summary>Targets layers whose full dotted path matches <paramref name="pattern"/> entirely.</summary>
    public static TargetModules Matching(string pattern)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(pattern);
        try
        {
            _ = new Regex(pattern, RegexOptions.CultureInvariant);
        }
        catch (ArgumentException ex)
        {
            throw new ArgumentException($"'{pattern}' is not a valid regular expression: {ex.Message}", nameof(pattern), ex);
        }

        return new(TargetMatchKind.Regex, [pattern], []);
    }

    /// <summary>Targets every Linear layer except the output head (by default <see cref="DefaultOutputHeadNames"/>).</summary>
    public static TargetModules AllLinear(params string[] outputHeadNames) =>
        new(TargetMatchKind.AllLinearExceptHead, [], outputHeadNames.Length == 0 ? DefaultOutputHeadNames : CheckPatterns(outputHeadNames, nameof(outputHeadNames)));

    /// <summary>True when the dotted module path <paramref name="path"/> is selected.</summary>
    public bool IsMatch(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        var last = path[(path.LastIndexOf('.') + 1)..];
        return Kind switch
        {
            TargetMatchKind.ExactNames => Patterns.Contains(path, StringComparer.Ordinal),
            TargetMatchKind.Suffixes => Patterns.Any(s => path == s || path.EndsWith("." + s, StringComparison.Ordinal)),
            TargetMatchKind.Regex => Regex.IsMatch(path, $"^(?:{Patterns[0]})$", RegexOptions.CultureInvariant),
            TargetMatchKind.AllLinearExceptHead => !OutputHeadNames.Contains(last, StringComparer.Ordinal),
            _ => false,
        };
    }

    /// <inheritdoc />
    public override string ToString() => Kind switch
    {
        TargetMatchKind.AllLinearExceptHead => $"all Linear layers except [{string.Join(", ", OutputHeadNames)}]",
        TargetMatchKind.Regex => $"regex '{Patterns[0]}'",
        _ => $"{Kind} [{string.Join(", ", Patterns)}]",
    };

    private static string[] CheckPatterns(string[] patterns, string paramName)
    {
        ArgumentNullException.ThrowIfNull(patterns, paramName);
        if (patterns.Length == 0 || patterns.Any(string.IsNullOrWhiteSpace))
        {
            throw new ArgumentException("Give at least one non-empty layer name.", paramName);
        }

        return [.. patterns];
    }
}
