using Microsoft.Extensions.Logging;

namespace GuardSpace.Diagnostics;

internal static partial class Log
{
    [LoggerMessage(EventId = 200, Level = LogLevel.Debug, Message = "Decomposed '{Layer}' ({Method}, r = {Rank}): adapter singular values {First:G4} .. {Last:G4}, damping l = {Damping:G3}, condition >= {Condition:G3}")]
    public static partial void LayerDecomposed(ILogger logger, string layer, string method, int rank, double first, double last, double damping, double condition);

    [LoggerMessage(EventId = 201, Level = LogLevel.Information, Message = "Layer '{Layer}': damping raised to l = {Damping:G3} after {Doublings} doublings to make the safety covariance well conditioned")]
    public static partial void DampingIncreased(ILogger logger, string layer, double damping, int doublings);
}
