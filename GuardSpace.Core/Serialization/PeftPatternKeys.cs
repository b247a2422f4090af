using System.Text.RegularExpressions;

namespace GuardSpace.Serialization;

/// <summary>
/// The keys of PEFT's <c>rank_pattern</c> and <c>alpha_pattern</c>, chosen so that every PEFT version resolves each to its
/// layer. PEFT reads a key as an (unescaped) regular expression on the module path: PEFT 0.6 (which introduced the patterns) to 0.14 take the first key
/// with <c>re.match(".*\.{key}$", path)</c> and otherwise look the full path up exactly; 0.15 and later use
/// <c>re.match("(.*\.)?({key})$", path)</c>. A full path such as <c>model.layers.0.mlp.down_proj</c> is found only by the
/// exact fallback of the older rule, which any earlier suffix key can pre-empt; the path without its first segment
/// (<c>layers.0.mlp.down_proj</c>) is matched by both rules. So each key is the longest proper suffix of the path (drop the
/// first segment) when both rules match it to that module alone among the model's modules, else the full path.
/// </summary>
internal static class PeftPatternKeys
{
    /// <summary>The key for each of <paramref name="layers"/>, given every module path of the model.</summary>
    public static IReadOnlyDictionary<string, string> For(IEnumerable<string> layers, IReadOnlyCollection<string> modulePaths)
    {
        var keys = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var layer in layers)
        {
            var dot = layer.IndexOf('.');
            var suffix = dot < 0 ? null : layer[(dot + 1)..];
            keys[layer] = suffix is not null && modulePaths.Count(p => MatchesOld(suffix, p) || MatchesNew(suffix, p)) == 1 && MatchesOld(suffix, layer) && MatchesNew(suffix, layer)
                ? suffix
                : layer;
        }

        return keys;
    }

    /// <summary>PEFT 0.6-0.14: <c>re.match(rf".*\.{key}$", path)</c> (Python's match anchors at the start).</summary>
    internal static bool MatchesOld(string key, string path) => Regex.IsMatch(path, $@"\A.*\.{key}\z", RegexOptions.CultureInvariant);

    /// <summary>PEFT 0.15 and later: <c>re.match(rf"(.*\.)?({key})$", path)</c>.</summary>
    internal static bool MatchesNew(string key, string path) => Regex.IsMatch(path, $@"\A(.*\.)?({key})\z", RegexOptions.CultureInvariant);
}
