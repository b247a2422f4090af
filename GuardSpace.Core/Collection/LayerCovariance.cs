using static TorchSharp.torch;

namespace GuardSpace.Collection;

/// <summary>
/// The accumulated activation covariance <c>sum x x^T</c> of one Linear layer input, shared by every layer that
/// receives the same input (for example q_proj, k_proj and v_proj). Owns <see cref="Sum"/>.
/// </summary>
public sealed class LayerCovariance : IDisposable
{
    private Tensor? sum;

    internal LayerCovariance(IReadOnlyList<string> layers, Tensor sum, long tokenCount, long sampleCount)
    {
        if (layers.Count == 0)
        {
            throw new ArgumentException("A covariance belongs to at least one layer.", nameof(layers));
        }

        Layers = [.. layers];
        this.sum = sum;
        InputWidth = sum.shape[0];
        TokenCount = tokenCount;
        SampleCount = sampleCount;
    }

    /// <summary>The name of the first layer (in module order) of <see cref="Layers"/>; the covariance's key when saved.</summary>
    public string Key => Layers[0];

    /// <summary>Every layer (dotted module path, module order) that receives this input.</summary>
    public IReadOnlyList<string> Layers { get; }

    /// <summary>
    /// The <c>n x n</c> sum of <c>x x^T</c> over all unmasked tokens (after per-sample scaling when enabled),
    /// in the accumulation dtype, on the device of the layer. Owned by this object: it is disposed with it.
    /// </summary>
    public Tensor Sum => sum ?? throw new ObjectDisposedException(nameof(LayerCovariance), $"The covariance of '{Key}' has been disposed.");

    /// <summary>The layers' input width <c>n</c>.</summary>
    public long InputWidth { get; }

    /// <summary>The number of unmasked tokens accumulated.</summary>
    public long TokenCount { get; }

    /// <summary>The number of samples (sequences with at least one unmasked token) accumulated.</summary>
    public long SampleCount { get; }

    /// <summary>Disposes <see cref="Sum"/>.</summary>
    public void Dispose()
    {
        sum?.Dispose();
        sum = null;
    }

    /// <inheritdoc />
    public override string ToString() =>
        $"{Key} [{string.Join(", ", Layers)}]: {InputWidth}x{InputWidth}, {TokenCount} tokens, {SampleCount} samples";
}
