namespace GuardSpace.Tests.TestUtilities;

/// <summary>
/// A new folder under the system's temporary folder, deleted with everything in it on <see cref="Dispose"/>: hold it in
/// a <c>using</c> so a failing test does not leave its files behind. Converts to its path.
/// </summary>
internal sealed class TempDirectory : IDisposable
{
    private TempDirectory(string path) => Path = path;

    /// <summary>The folder's full path.</summary>
    public string Path { get; }

    /// <summary>Creates a new empty folder whose name starts with <paramref name="prefix"/>.</summary>
    public static TempDirectory Create(string prefix) => new(Directory.CreateTempSubdirectory(prefix).FullName);

    public static implicit operator string(TempDirectory directory) => directory.Path;

    public override string ToString() => Path;

    /// <summary>Deletes the folder; a folder the test already removed is fine.</summary>
    public void Dispose()
    {
        if (Directory.Exists(Path))
        {
            Directory.Delete(Path, recursive: true);
        }
    }
}
