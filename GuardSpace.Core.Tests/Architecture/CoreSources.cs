using System.Text.RegularExpressions;

namespace GuardSpace.Tests.Architecture;

/// <summary>The C# sources of GuardSpace.Core, read from the repository the tests were built from, grouped by folder.</summary>
internal static partial class CoreSources
{
    /// <summary>The folder name used for the files at the project's root (the public front).</summary>
    public const string Root = "(root)";

    public static string Directory { get; } = Find();

    /// <summary>Every source file: its folder (first path segment, or <see cref="Root"/>), path and text.</summary>
    public static IReadOnlyList<(string Folder, string Path, string Text)> Files { get; } =
    [
        .. System.IO.Directory.EnumerateFiles(Directory, "*.cs", SearchOption.AllDirectories)
            .Select(p => System.IO.Path.GetRelativePath(Directory, p))
            .Where(p => !p.StartsWith("obj", StringComparison.Ordinal) && !p.StartsWith("bin", StringComparison.Ordinal))
            .Order(StringComparer.Ordinal)
            .Select(p => (p.Contains(System.IO.Path.DirectorySeparatorChar) ? p[..p.IndexOf(System.IO.Path.DirectorySeparatorChar)] : Root, p, File.ReadAllText(System.IO.Path.Combine(Directory, p)))),
    ];

    /// <summary>The code of a file without comments and string literals (a type named in a message is not a dependency).</summary>
    public static string CodeOf(string text)
    {
        var lines = text.Split('\n').Select(l => l.TrimStart()).Where(l => !l.StartsWith("//", StringComparison.Ordinal));
        return StringLiteral().Replace(string.Join('\n', lines), "\"\"");
    }

    /// <summary>The types each folder declares.</summary>
    public static Dictionary<string, HashSet<string>> DeclaredTypes() =>
        Files.GroupBy(f => f.Folder).ToDictionary(
            g => g.Key,
            g => g.SelectMany(f => TypeDeclaration().Matches(CodeOf(f.Text)).Select(m => m.Groups[1].Value)).ToHashSet(StringComparer.Ordinal));

    private static string Find()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            var candidate = System.IO.Path.Combine(dir.FullName, "GuardSpace.Core");
            if (File.Exists(System.IO.Path.Combine(candidate, "GuardSpace.Core.csproj")))
            {
                return candidate;
            }
        }

        throw new DirectoryNotFoundException($"GuardSpace.Core was not found above {AppContext.BaseDirectory}: the layout tests read the sources.");
    }

    [GeneratedRegex("\\$?@?\"(?:[^\"\\\\\\n]|\\\\.)*\"")]
    private static partial Regex StringLiteral();

    [GeneratedRegex("\\b(?:class|record|struct|interface|enum)\\s+(?:struct\\s+|class\\s+)?([A-Z]\\w*)")]
    private static partial Regex TypeDeclaration();
}
