using GuardSpace.Internal;
using GuardSpace.Projection;
using static TorchSharp.torch;

namespace GuardSpace.Adapters;

/// <summary>
/// One projector shared by the adapters of layers that read the same input, plus a copy converted to the adapters'
/// current device and dtype (made once, and again only after the model moves with <c>.to()</c>).
/// </summary>
internal sealed class ProjectorHandle(INullSpaceProjector projector) : IDisposable
{
    private INullSpaceProjector? _converted;

    public INullSpaceProjector Projector { get; } = projector;

    public INullSpaceProjector For(Tensor rows)
    {
        var type = AdapterPrecision.ComputeType(rows.dtype);
        if (Projector.Device.SameAs(rows.device) && Projector.BasisType == type)
        {
            return Projector;
        }

        if (_converted is null || !_converted.Device.SameAs(rows.device) || _converted.BasisType != type)
        {
            _converted?.Dispose();
            _converted = Projector.To(rows.device, type);
        }

        return _converted;
    }

    public void Dispose()
    {
        _converted?.Dispose();
        Projector.Dispose();
    }
}
