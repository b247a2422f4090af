using System.Reflection;

namespace GuardSpace;

/// <summary>Facts about the GuardSpace library build in use.</summary>
public static class GuardSpaceInfo
{
    /// <summary>The library's informational version (for example <c>0.1.0</c>), recorded in saved adapter configs.</summary>
    public static string Version { get; } =
        typeof(GuardSpaceInfo).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion.Split('+')[0]
        ?? typeof(GuardSpaceInfo).Assembly.GetName().Version?.ToString()
        ?? "0.0.0";
}
