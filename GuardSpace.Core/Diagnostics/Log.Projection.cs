using Microsoft.Extensions.Logging;

namespace GuardSpace.Diagnostics;

internal static partial class Log
{
    [LoggerMessage(EventId = 300, Level = LogLevel.Debug, Message = "Null space of '{Layer}': {NullDimension} of {Width} directions ({Rule} rule, threshold {Threshold:G3}, protected energy {ProtectedEnergy:P4})")]
    public static partial void NullSpaceFitted(ILogger logger, string layer, int nullDimension, int width, string rule, double threshold, double protectedEnergy);

    [LoggerMessage(EventId = 301, Level = LogLevel.Warning, Message = "Layer '{Layer}' has no null space among its {Width} input directions: its adapter is frozen (the projector is zero). Use fewer harmful calibration tokens, another threshold rule, or EmptyNullSpacePolicy.FallBackToEnergy.")]
    public static partial void NullSpaceEmptyFrozen(ILogger logger, string layer, int width);

    [LoggerMessage(EventId = 302, Level = LogLevel.Warning, Message = "Layer '{Layer}' has no null space under the requested rule; fell back to the energy rule ({EnergyFraction:P2} of the trace protected), leaving {NullDimension} free directions.")]
    public static partial void NullSpaceFellBack(ILogger logger, string layer, int nullDimension, double energyFraction);
}
