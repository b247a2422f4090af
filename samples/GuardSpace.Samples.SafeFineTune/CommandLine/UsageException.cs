namespace GuardSpace.Samples.SafeFineTune;

/// <summary>A command line the sample cannot run: an unknown option, a missing or bad value. Exit code 2.</summary>
internal sealed class UsageException(string message) : Exception(message);
