namespace GuardSpace.Samples.SafeFineTune;

/// <summary>A run that started and could not finish or failed a check: the message names the cause and the fix. Exit code 1.</summary>
internal sealed class SampleFailure(string message) : Exception(message);
