namespace GuardSpace.Tests.Fuzz;

/// <summary>How one fuzz case ended: loaded, refused with an allowed exception, or a failure (with what went wrong).</summary>
internal sealed record FuzzOutcome(string Target, string Mutation, string File, int Seed, string Class, string? Failure, string? Detail);

/// <summary>
/// Runs fuzz cases: writes the damaged folder, loads it on a worker thread with a time limit, measures the managed bytes the
/// load allocated and sorts the result into an outcome class.
/// </summary>
internal static class FuzzRunner
{
    /// <summary>A load that takes longer is a hang.</summary>
    public static readonly TimeSpan CaseTimeout = TimeSpan.FromSeconds(20);

    /// <summary>
    /// The managed bytes one load may allocate: twice what loading the undamaged folder allocates (the model, parsed JSON,
    /// dictionaries), plus 16 MiB, plus 32 times the damaged folder's size (a 4 MiB JSON string is parsed into objects), so a
    /// header that claims terabytes cannot make the loader reserve them.
    /// </summary>
    public static long AllocationBound(long validLoadBytes, long folderBytes) => (2 * validLoadBytes) + (16L << 20) + (32 * folderBytes);

    /// <summary>
    /// The exceptions a hostile file may end in, when their message names the folder: <see cref="InvalidDataException"/>
    /// (malformed or inconsistent file), <see cref="NotSupportedException"/> (well-formed but not supported) and
    /// <see cref="ArgumentException"/> itself (the file does not fit the model it is loaded onto). Anything else,
    /// including subclasses such as <see cref="ArgumentOutOfRangeException"/>, escaped a check.
    /// </summary>
    public static bool IsAllowed(Exception ex) =>
        ex.GetType() == typeof(InvalidDataException) || ex.GetType() == typeof(NotSupportedException) || ex.GetType() == typeof(ArgumentException);

    public static FuzzOutcome Run(LoaderTarget target, IReadOnlyDictionary<string, byte[]> valid, long validLoadBytes, string directory, int caseIndex)
    {
        var seed = unchecked((StableHash(target.Name) * 100_003) + caseIndex);
        var random = new Random(seed);
        var file = target.Files[random.Next(target.Files.Count)];
        var classes = Mutations.For(file);
        var mutation = classes[caseIndex % classes.Count];
        foreach (var (name, bytes) in valid)
        {
            File.WriteAllBytes(Path.Combine(directory, name), name == file ? Mutations.Apply(mutation, bytes, name.EndsWith(".safetensors", StringComparison.Ordinal), random) : bytes);
        }

        var folderBytes = valid.Keys.Sum(n => new FileInfo(Path.Combine(directory, n)).Length);
        var (error, allocated, finished) = LoadWithLimits(target, directory);
        FuzzOutcome Outcome(string cls, string? failure, string? detail) => new(target.Name, mutation, file, seed, cls, failure, detail);
        if (!finished)
        {
            return Outcome("failure", "timeout", $"no result after {CaseTimeout.TotalSeconds} s");
        }

        var bound = AllocationBound(validLoadBytes, folderBytes);
        if (allocated > bound)
        {
            return Outcome("failure", "allocation", $"{allocated} bytes allocated for a {folderBytes}-byte folder (bound {bound})");
        }

        if (error is null)
        {
            return Outcome("loaded", null, null);
        }

        if (!IsAllowed(error))
        {
            return Outcome("failure", error.GetType().Name, Shorten(error.ToString()));
        }

        return error.Message.Contains(directory, StringComparison.Ordinal)
            ? Outcome($"refused:{error.GetType().Name}", null, null)
            : Outcome("failure", "unnamed-file", Shorten(error.Message));
    }

    /// <summary>The managed bytes a load of <paramref name="directory"/> allocates (throws what the load throws).</summary>
    public static long MeasureValidLoad(LoaderTarget target, string directory)
    {
        var (error, allocated, finished) = LoadWithLimits(target, directory);
        Assert.True(finished, $"{target.Name}: the undamaged folder did not load within {CaseTimeout}");
        return error is null ? allocated : throw new InvalidOperationException($"{target.Name}: the undamaged folder does not load", error);
    }

    private static string Shorten(string text) => text.Length <= 600 ? text : string.Concat(text.AsSpan(0, 600), " ...");

    private static (Exception? Error, long Allocated, bool Finished) LoadWithLimits(LoaderTarget target, string directory)
    {
        var task = Task.Factory.StartNew(() =>
        {
            var before = GC.GetAllocatedBytesForCurrentThread();
            try
            {
                target.Load(directory);
                return ((Exception?)null, GC.GetAllocatedBytesForCurrentThread() - before);
            }
            catch (Exception ex)
            {
                return (ex, GC.GetAllocatedBytesForCurrentThread() - before);
            }
        }, CancellationToken.None, TaskCreationOptions.LongRunning, TaskScheduler.Default);
        if (!task.Wait(CaseTimeout))
        {
            return (null, 0, false);
        }

        var (error, allocated) = task.Result;
        return (error, allocated, true);
    }

    /// <summary>A hash that is the same in every process (string.GetHashCode is randomised), so seeds reproduce.</summary>
    private static int StableHash(string text)
    {
        var hash = 17;
        foreach (var c in text)
        {
            hash = unchecked((hash * 31) + c);
        }

        return hash;
    }
}
