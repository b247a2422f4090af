using System.Reflection;

namespace GuardSpace.Internal;

/// <summary>The library's informational version, read once from the assembly (the public face is <c>GuardSpaceInfo.Version</c>).</summary>
internal static class LibraryVersion
{
    /// <summary>For example <c>0.1.0</c>: the informational version without the source-revision suffix.</summary>
    public static string Value { get; } =
        typeof(LibraryVersion).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion.Split('+')[0]
        ?? typeof(LibraryVersion).Assembly.GetName().Version?.ToString()
        ?? "0.0.0";
}
