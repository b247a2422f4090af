using static TorchSharp.torch;

namespace GuardSpace.Samples.SafeFineTune;

/// <summary>How far one set of logits is from another, relative to the reference.</summary>
internal static class LogitChange
{
    /// <summary>|now - reference| / |reference| over all the batches together.</summary>
    public static double Relative(IReadOnlyList<Tensor> now, IReadOnlyList<Tensor> reference)
    {
        using var scope = NewDisposeScope();
        var diff = now.Zip(reference).Sum(p => (p.First.to_type(ScalarType.Float64) - p.Second.to_type(ScalarType.Float64)).square().sum().item<double>());
        var norm = reference.Sum(r => r.to_type(ScalarType.Float64).square().sum().item<double>());
        return norm > 0 ? Math.Sqrt(diff / norm) : diff > 0 ? double.PositiveInfinity : 0; // no NaN for all-zero logits
    }
}
