using System.Text;
using GuardSpace.Storage;

namespace GuardSpace.Serialization;

/// <summary>
/// Replaces several files together. Every new file is first written in full to a temporary file beside its target;
/// <see cref="Commit"/> then moves the old files aside, moves the new ones in and deletes the old ones. If anything fails
/// before the commit, the targets are untouched; if a move fails during it, the files already moved are put back. A crash
/// in the middle of the commit can still leave a mixed pair: the adapter config's checksums detect that at load time.
/// Disposing deletes temporaries that were not committed.
/// </summary>
/// <param name="beforeReplace">Called with each target path just before it is replaced (a fault injected here proves the restore; tests).</param>
internal sealed class FileTransaction(Action<string>? beforeReplace = null) : IDisposable
{
    private readonly List<(string Temporary, string Target)> _staged = [];

    /// <summary>Stages a file that a writer already put at <paramref name="temporary"/>, to replace <paramref name="target"/>.</summary>
    public void Stage(string target, string temporary) => _staged.Add((temporary, Path.GetFullPath(target)));

    /// <summary>Writes <paramref name="text"/> (UTF-8, no BOM) to a temporary file and stages it to replace <paramref name="target"/>.</summary>
    public void StageText(string target, string text)
    {
        var temporary = AtomicFileWriter.TemporaryPathBeside(target);
        try
        {
            File.WriteAllText(temporary, text, new UTF8Encoding(encoderShouldEmitUTF8Identifier: false));
        }
        catch
        {
            AtomicFileWriter.TryDelete(temporary);
            throw;
        }

        Stage(target, temporary);
    }

    /// <summary>Moves every staged file over its target; on failure, restores the targets already replaced and rethrows.</summary>
    public void Commit()
    {
        var done = new List<(string Target, string? Backup, bool Moved)>();
        try
        {
            foreach (var (temporary, target) in _staged)
            {
                beforeReplace?.Invoke(target);
                string? backup = null;
                if (File.Exists(target))
                {
                    backup = AtomicFileWriter.TemporaryPathBeside(target);
                    File.Move(target, backup);
                }

                done.Add((target, backup, false));
                File.Move(temporary, target);
                done[^1] = (target, backup, true);
            }
        }
        catch
        {
            for (var i = done.Count - 1; i >= 0; i--)
            {
                var (target, backup, moved) = done[i];
                if (moved)
                {
                    AtomicFileWriter.TryDelete(target);
                }

                if (backup is not null)
                {
                    File.Move(backup, target, overwrite: true);
                }
            }

            throw;
        }

        foreach (var (_, backup, _) in done)
        {
            if (backup is not null)
            {
                AtomicFileWriter.TryDelete(backup);
            }
        }

        _staged.Clear();
    }

    /// <inheritdoc />
    public void Dispose()
    {
        foreach (var (temporary, _) in _staged)
        {
            AtomicFileWriter.TryDelete(temporary);
        }

        _staged.Clear();
    }
}
