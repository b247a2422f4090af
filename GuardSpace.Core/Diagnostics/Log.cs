using Microsoft.Extensions.Logging;

namespace GuardSpace.Diagnostics;

/// <summary>
/// Source-generated log messages. Event ids by area: 1xx collection, 2xx decomposition, 3xx projection,
/// 4xx adapters, 5xx training, 6xx serialization. Each area adds its own partial file (Log.Area.cs).
/// Prompt text is never logged.
/// </summary>
internal static partial class Log
{
}
