namespace GuardSpace.Samples.SafeFineTune;

/// <summary>The sample's exit codes (docs/getting-started.md lists them).</summary>
internal static class ExitCode
{
    /// <summary>The run finished and its checks passed (also --help).</summary>
    public const int Ok = 0;

    /// <summary>A runtime failure or a failed check; the message is on stderr.</summary>
    public const int Failed = 1;

    /// <summary>A usage error (unknown option, bad value); a one-line message and a hint are on stderr.</summary>
    public const int Usage = 2;
}
