namespace GuardSpace.Models.Export;

/// <summary>
/// A temporary sibling of the target folder that receives every file; <see cref="Commit"/> renames it into place, so
/// readers see the old folder or the complete new one, never half of it. Disposing an uncommitted one deletes it.
/// </summary>
internal sealed class StagingFolder : IDisposable
{
    private readonly string _target;
    private bool _committed;

    private StagingFolder(string target, string path)
    {
        _target = target;
        Path = path;
    }

    /// <summary>The temporary folder to write into.</summary>
    public string Path { get; }

    /// <summary>Creates the temporary folder beside <paramref name="target"/>; refuses a non-empty target unless <paramref name="overwrite"/>.</summary>
    public static StagingFolder Create(string target, bool overwrite)
    {
        var full = System.IO.Path.GetFullPath(target).TrimEnd(System.IO.Path.DirectorySeparatorChar);
        if (File.Exists(full))
        {
            throw new IOException($"'{full}' is a file; give a folder for the checkpoint.");
        }

        if (!overwrite && Directory.Exists(full) && Directory.EnumerateFileSystemEntries(full).Any())
        {
            throw new IOException($"'{full}' already holds files; choose an empty or new folder, or set Overwrite to replace it.");
        }

        var parent = System.IO.Path.GetDirectoryName(full) ?? throw new IOException($"'{full}' has no parent folder.");
        Directory.CreateDirectory(parent);
        var staging = System.IO.Path.Combine(parent, $".{System.IO.Path.GetFileName(full)}.{Guid.NewGuid():N}.tmp");
        Directory.CreateDirectory(staging);
        return new StagingFolder(full, staging);
    }

    /// <summary>Moves the finished folder into place; an existing target is moved aside first and deleted after.</summary>
    public void Commit()
    {
        string? old = null;
        if (Directory.Exists(_target))
        {
            old = $"{Path}.old";
            Directory.Move(_target, old);
        }

        try
        {
            Directory.Move(Path, _target);
        }
        catch
        {
            if (old is not null)
            {
                Directory.Move(old, _target);
            }

            throw;
        }

        _committed = true;
        if (old is not null)
        {
            Directory.Delete(old, recursive: true);
        }
    }

    /// <inheritdoc />
    public void Dispose()
    {
        if (!_committed && Directory.Exists(Path))
        {
            Directory.Delete(Path, recursive: true);
        }
    }
}
