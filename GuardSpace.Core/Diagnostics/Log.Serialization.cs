using Microsoft.Extensions.Logging;

namespace GuardSpace.Diagnostics;

/// <summary>Serialization messages, event ids 600-699.</summary>
internal static partial class Log
{
    [LoggerMessage(EventId = 600, Level = LogLevel.Debug, Message = "Wrote {TensorCount} tensors ({ByteCount} data bytes) to safetensors file '{Path}'")]
    public static partial void SafetensorsWritten(ILogger logger, int tensorCount, long byteCount, string path);

    [LoggerMessage(EventId = 601, Level = LogLevel.Debug, Message = "Read {TensorCount} tensors ({ByteCount} data bytes) from safetensors file '{Path}'")]
    public static partial void SafetensorsRead(ILogger logger, int tensorCount, long byteCount, string path);
}
