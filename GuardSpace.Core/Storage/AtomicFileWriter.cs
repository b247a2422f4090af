using System.Text;

namespace GuardSpace.Storage;

/// <summary>
/// Writes files through a temporary sibling and a move, so a crash never leaves a half-written file and an older,
/// longer file never leaves bytes behind (the reason for not overwriting in place).
/// </summary>
public static class AtomicFileWriter
{
    /// <summary>Writes <paramref name="text"/> as UTF-8 without a byte-order mark to <paramref name="path"/>, replacing it atomically.</summary>
    public static void WriteAllText(string path, string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        Write(path, stream => stream.Write(new UTF8Encoding(encoderShouldEmitUTF8Identifier: false).GetBytes(text)));
    }

    /// <summary>
    /// Lets <paramref name="write"/> fill a new temporary file beside <paramref name="path"/>, flushes it to disk and moves
    /// it over <paramref name="path"/>. When <paramref name="write"/> throws, the temporary file is deleted and
    /// <paramref name="path"/> is left as it was.
    /// </summary>
    public static void Write(string path, Action<Stream> write)
    {
        var fullPath = Path.GetFullPath(path);
        var temporary = WriteTemporary(fullPath, write);
        try
        {
            File.Move(temporary, fullPath, overwrite: true);
        }
        catch
        {
            TryDelete(temporary);
            throw;
        }
    }

    /// <summary>Writes a new temporary file beside <paramref name="path"/> and returns its path: the caller moves it into place or deletes it.</summary>
    internal static string WriteTemporary(string path, Action<Stream> write)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(path);
        ArgumentNullException.ThrowIfNull(write);
        var temporary = TemporaryPathBeside(path);
        try
        {
            using var stream = new FileStream(temporary, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 16);
            write(stream);
            stream.Flush(flushToDisk: true);
        }
        catch
        {
            TryDelete(temporary);
            throw;
        }

        return temporary;
    }

    /// <summary>A new hidden temporary path in the folder of <paramref name="path"/> (created if missing), so the final move stays on one volume.</summary>
    internal static string TemporaryPathBeside(string path)
    {
        var fullPath = Path.GetFullPath(path);
        var directory = Path.GetDirectoryName(fullPath) ?? throw new ArgumentException($"'{path}' has no parent folder.", nameof(path));
        Directory.CreateDirectory(directory);
        return Path.Combine(directory, $".{Path.GetFileName(fullPath)}.{Guid.NewGuid():N}.tmp");
    }

    /// <summary>Deletes <paramref name="file"/> if it can; a failure here must not hide the error that led to the clean-up.</summary>
    internal static void TryDelete(string file)
    {
        try
        {
            File.Delete(file);
        }
        catch (IOException)
        {
        }
        catch (UnauthorizedAccessException)
        {
        }
    }
}
