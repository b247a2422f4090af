using GuardSpace.Internal;
using TorchSharp;
using static TorchSharp.torch;

namespace GuardSpace.Collection;

/// <summary>
/// The running <c>sum x x^T</c> of one group of layers that share an input. The sum lives outside every dispose scope,
/// on the device of the layer, and is updated in place.
/// </summary>
internal sealed class CovarianceAccumulator : IDisposable
{
    public CovarianceAccumulator(string firstLayer, int firstIndex)
    {
        Members.Add((firstLayer, firstIndex));
    }

    /// <summary>Member layers with their index in module order.</summary>
    public List<(string Name, int Index)> Members { get; } = [];

    private Tensor? _sum;
    private bool _lowerStale;

    /// <summary>
    /// The running sum, null until the first call (or after ownership moved to a <see cref="LayerCovariance"/>). Reading
    /// it completes the lower triangle, which <see cref="Add"/> leaves stale on wide inputs (<see cref="GramUpdate"/>).
    /// </summary>
    public Tensor? Sum
    {
        get
        {
            if (_sum is not null && _lowerStale)
            {
                using var noGrad = no_grad();
                GramUpdate.MirrorUpper(_sum);
                _lowerStale = false;
            }

            return _sum;
        }
    }

    public long TokenCount { get; private set; }

    public long SampleCount { get; private set; }

    /// <summary>The input tensor observation the group accumulated last (shared-input mode only).</summary>
    public InputObservation? Current { get; set; }

    /// <summary>How many distinct input tensors the group has accumulated.</summary>
    public int ObservationCount { get; set; }

    public string Describe() => string.Join(", ", Members.Select(m => m.Name));

    /// <summary>
    /// Adds the activations <paramref name="input"/> ([..., n]) of <paramref name="layer"/>: rank 3 inputs are
    /// [batch, seq, n] with one sample per batch row; any other rank is one sample whose tokens are the flattened leading
    /// dimensions. Masked-out tokens count nowhere. Throws before changing anything when the mask does not fit or the
    /// activations are not finite. Converted, masked or scaled activations are written into <paramref name="scratch"/>,
    /// never into the caller's tensor.
    /// </summary>
    public void Add(string layer, Tensor input, Tensor? mask, ActivationScaling scaling, ScalarType accumulationType, ActivationScratch scratch)
    {
        using var noGrad = no_grad();
        using var scope = NewDisposeScope();
        if (input.dim() == 0)
        {
            throw new ArgumentException($"Layer '{layer}': the input is a scalar; a Linear layer's input has shape [..., in_features].");
        }

        var x = input.detach();
        var rank = x.dim();
        var shape = x.shape;
        var n = shape[^1];
        var leading = shape[..^1];
        var x3 = rank == 3 ? x : x.reshape(1, -1, n);
        var batch = x3.shape[0];
        var seq = x3.shape[1];

        if (_sum is null)
        {
            _sum = zeros(n, n, dtype: accumulationType, device: x.device).DetachFromDisposeScope();
        }
        else if (_sum.shape[0] != n)
        {
            throw new InvalidOperationException($"Layer '{layer}': the input width changed from {_sum.shape[0]} to {n} during collection.");
        }
        else if (_sum.device_type != x.device_type || _sum.device_index != x.device_index)
        {
            throw new InvalidOperationException(
                $"Layer '{layer}': the input is on {x.device} but its covariance accumulates on {_sum.device}. Do not move the model while collecting.");
        }

        Tensor? m = null;
        if (mask is not null)
        {
            var fits = mask.shape.SequenceEqual(leading)
                || (rank != 3 && mask.dim() == 2 && mask.shape[0] == 1 && mask.shape[1] == batch * seq);
            if (!fits)
            {
                throw new ArgumentException(
                    $"Layer '{layer}': the token mask has shape [{string.Join(", ", mask.shape)}] but the layer's input has shape [{string.Join(", ", shape)}]; " +
                    $"the mask must have the input's leading shape [{string.Join(", ", leading)}] ([batch, seq] for [batch, seq, n] inputs). " +
                    "Call SetTokenMask with the mask of the batch before running it, or SetTokenMask(null) to collect every token.");
            }

            m = mask.to(x.device).reshape(batch, seq);
        }

        // Anything that changes the activations works on a copy in the shared scratch buffer, in place there.
        var scaled = scaling == ActivationScaling.PerSampleMaxAbs;
        var xa = x3.dtype != accumulationType || m is not null || scaled ? scratch.CopyOf(x3, accumulationType) : x3;
        if (m is not null)
        {
            xa.masked_fill_(m.logical_not().unsqueeze(-1), 0);
        }

        TensorChecks.ThrowIfNonFinite(xa, layer, "the input activations",
            "The covariance would be meaningless. Check the model (weights, earlier layers, overflow in half precision) and the calibration inputs.");

        long tokens;
        long samples;
        Tensor? validRows = null;
        if (m is not null)
        {
            var perSample = m.sum(1, type: ScalarType.Int64);
            tokens = perSample.sum().item<long>();
            samples = perSample.gt(0).sum().item<long>();
            if (tokens < batch * seq)
            {
                validRows = m.reshape(-1).nonzero().squeeze(1);
            }
        }
        else
        {
            tokens = batch * seq;
            samples = seq > 0 ? batch : 0;
        }

        if (tokens == 0)
        {
            return;
        }

        if (scaled)
        {
            // max |x| per sample as max(max x, -min x): two reductions, no |x| copy of the activations.
            var max = maximum(xa.amax([1, 2]), xa.amin([1, 2]).neg());
            max = max.masked_fill(max.eq(0), 1).view(batch, 1, 1);
            xa.div_(max);                                        // the scratch copy, never the caller's activations
        }

        var rows = xa.reshape(-1, n);
        if (validRows is not null)
        {
            rows = rows.index_select(0, validRows);
        }

        GramUpdate.AddUpper(_sum, rows);
        _lowerStale |= GramUpdate.IsBlocked(n);
        TokenCount += tokens;
        SampleCount += samples;
    }

    /// <summary>Hands the running sum to the caller (who then owns it) and forgets it.</summary>
    public Tensor TakeSum()
    {
        var sum = Sum ?? throw new InvalidOperationException("The accumulator holds no sum.");
        _sum = null;
        return sum;
    }

    public void Dispose()
    {
        _sum?.Dispose();
        _sum = null;
    }
}
