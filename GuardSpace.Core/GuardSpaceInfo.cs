using GuardSpace.Internal;

namespace GuardSpace;

/// <summary>Facts about the GuardSpace library build in use.</summary>
public static class GuardSpaceInfo
{
    /// <summary>The library's informational version (for example <c>0.1.0</c>), recorded in saved adapter configs.</summary>
    public static string Version => LibraryVersion.Value;
}
