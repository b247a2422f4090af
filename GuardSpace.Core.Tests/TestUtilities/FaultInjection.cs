using GuardSpace.Adapters;
using GuardSpace.Attach;
using Microsoft.Extensions.Logging.Abstractions;
using static TorchSharp.torch.nn;

namespace GuardSpace.Tests.TestUtilities;

/// <summary>Attach with a fault (or a cancellation) injected after each layer's surgery, through the attach context.</summary>
internal static class FaultInjection
{
    public static GuardedModel AttachWithFault(Module model, GuardedLoraOptions options, Action<string> afterLayerSurgery, CalibrationData? calibration = null, CancellationToken cancellationToken = default)
    {
        options.Validate();
        var context = new AttachContext(model, options, NullLogger.Instance, null, cancellationToken) { AfterLayerSurgery = afterLayerSurgery };
        return GuardedModel.AttachWith(context, calibration);
    }
}
