using Microsoft.Extensions.Logging;

namespace GuardSpace.Tests.TestUtilities;

/// <summary>An ILoggerFactory whose every logger is one <see cref="RecordingLogger"/>.</summary>
internal sealed class RecordingLoggerFactory : ILoggerFactory
{
    public RecordingLogger Logger { get; } = new();

    public ILogger CreateLogger(string categoryName) => Logger;

    public void AddProvider(ILoggerProvider provider)
    {
    }

    public void Dispose()
    {
    }
}
