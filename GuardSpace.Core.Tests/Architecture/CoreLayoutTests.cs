using System.Reflection;
using System.Text.RegularExpressions;

namespace GuardSpace.Tests.Architecture;

/// <summary>
/// The core's layout rules (docs/architecture.md): dependencies between folders point one way, down this list; no file
/// over 400 lines; no method with more than 6 parameters outside records.
/// </summary>
public class CoreLayoutTests
{
    /// <summary>Bottom to top: a folder may use only folders listed before it.</summary>
    public static readonly string[] Layers =
    [
        "Internal", "Diagnostics", "Targeting", "Storage", "Collection", "Projection", "Decomposition",
        "Adapters", "Attach", "Training", "Serialization", "Behaviour", CoreSources.Root,
    ];

    [Fact]
    public void EveryFolderIsPlacedInTheLayering()
    {
        var folders = CoreSources.Files.Select(f => f.Folder).Distinct().ToList();
        Assert.Empty(folders.Except(Layers));
    }

    [Fact]
    public void DependenciesBetweenFoldersPointDownTheLayering()
    {
        var declared = CoreSources.DeclaredTypes();
        var violations = new List<string>();
        foreach (var (folder, path, text) in CoreSources.Files)
        {
            var code = CoreSources.CodeOf(text);
            var rank = Array.IndexOf(Layers, folder);
            foreach (var (other, types) in declared)
            {
                if (other == folder || Array.IndexOf(Layers, other) < rank)
                {
                    continue;
                }

                var used = types.Where(t => Regex.IsMatch(code, $"\\b{t}\\b")).Order(StringComparer.Ordinal).ToList();
                if (other != CoreSources.Root && code.Contains($"using GuardSpace.{other};", StringComparison.Ordinal))
                {
                    used.Add($"using GuardSpace.{other}");
                }

                if (used.Count > 0)
                {
                    violations.Add($"{path} ({folder}) uses {other}: {string.Join(", ", used)}");
                }
            }
        }

        Assert.True(violations.Count == 0, "Dependencies against the layering:\n" + string.Join('\n', violations));
    }

    [Fact]
    public void NoSourceFileIsLongerThan400Lines()
    {
        var longFiles = CoreSources.Files.Select(f => (f.Path, Lines: f.Text.Split('\n').Length - (f.Text.EndsWith('\n') ? 1 : 0)))
            .Where(f => f.Lines > 400).Select(f => $"{f.Path}: {f.Lines} lines").ToList();
        Assert.True(longFiles.Count == 0, string.Join('\n', longFiles));
    }

    [Fact]
    public void NoMethodTakesMoreThanSixParametersOutsideRecords()
    {
        const BindingFlags All = BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.Instance | BindingFlags.Static | BindingFlags.DeclaredOnly;
        var offenders = typeof(GuardedModel).Assembly.GetTypes()
            .Where(t => !t.Name.Contains('<') && !IsRecord(t))
            .SelectMany(t => t.GetMethods(All).Cast<MethodBase>().Concat(t.GetConstructors(All)).Select(m => (Type: t, Method: m)))
            .Where(m => !m.Method.Name.Contains('<') && m.Method.GetParameters().Length > 6)
            .Select(m => $"{m.Type.FullName}.{m.Method.Name}({m.Method.GetParameters().Length} parameters)")
            .ToList();
        Assert.True(offenders.Count == 0, string.Join('\n', offenders));
    }

    // Records (options, configs, reports) are data: their positional constructors list fields, not arguments.
    private static bool IsRecord(Type t) => t.GetMethod("<Clone>$") is not null || t.GetProperty("EqualityContract", BindingFlags.NonPublic | BindingFlags.Instance) is not null;
}
