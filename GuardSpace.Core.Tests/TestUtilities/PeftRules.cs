using System.Text.RegularExpressions;

namespace GuardSpace.Tests.TestUtilities;

/// <summary>
/// How PEFT resolves a module path to a <c>rank_pattern</c> / <c>alpha_pattern</c> key, written here from its documented
/// behaviour (independent of the exporter): the first key for which the rule matches, else the path itself (then looked up
/// exactly). PEFT 0.6-0.14: <c>re.match(rf".*\.{key}$", path)</c>; 0.15 and later: <c>re.match(rf"(.*\.)?({key})$", path)</c>.
/// </summary>
internal static class PeftRules
{
    public static bool Old(string key, string path) => Regex.IsMatch(path, "^.*\\." + key + "$");

    public static bool New(string key, string path) => Regex.IsMatch(path, "^(.*\\.)?(" + key + ")$");

    public static string Resolve(IEnumerable<string> keys, string path, Func<string, string, bool> rule) =>
        keys.FirstOrDefault(k => rule(k, path)) ?? path;
}
