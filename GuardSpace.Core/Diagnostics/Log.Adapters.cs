using Microsoft.Extensions.Logging;

namespace GuardSpace.Diagnostics;

internal static partial class Log
{
    [LoggerMessage(EventId = 400, Level = LogLevel.Information, Message = "Attached {Count} {Method} adapters ({Frozen} frozen for lack of a null space), {Trainable} trainable parameters")]
    public static partial void Attached(ILogger logger, string method, int count, int frozen, long trainable);
}
