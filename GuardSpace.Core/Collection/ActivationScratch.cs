using GuardSpace.Internal;
using static TorchSharp.torch;

namespace GuardSpace.Collection;

/// <summary>
/// One reusable buffer for the collector's converted, masked or scaled copy of a layer's activations. Hooks run one at a
/// time (on CUDA, in order on one stream), so every accumulator of a collector can share it. Reusing it avoids a fresh
/// allocation per hooked layer and forward pass, which on CPU costs far more than the conversion itself: first touches of
/// fresh memory fault in every page (the Llama-shaped block's four 512-token inputs: 22 ms through <c>to_type</c>, 0.6 ms
/// copied into a kept buffer; 2 threads). It grows to the largest copy seen and is freed with the collector.
/// </summary>
internal sealed class ActivationScratch : IDisposable
{
    private Tensor? _buffer;

    /// <summary>
    /// <paramref name="source"/> copied (and converted) into the buffer, shaped like it. The view is valid until the next
    /// call; the caller may change it in place.
    /// </summary>
    public Tensor CopyOf(Tensor source, ScalarType type)
    {
        var needed = source.numel();
        if (_buffer is null || _buffer.dtype != type || !_buffer.device.SameAs(source.device) || _buffer.numel() < needed)
        {
            _buffer?.Dispose();
            _buffer = null;                                       // a failed allocation must not leave a disposed tensor here
            _buffer = empty(needed, dtype: type, device: source.device).DetachFromDisposeScope();
        }

        var view = _buffer.narrow(0, 0, needed).view(source.shape);
        view.copy_(source);
        return view;
    }

    public void Dispose()
    {
        _buffer?.Dispose();
        _buffer = null;
    }
}
