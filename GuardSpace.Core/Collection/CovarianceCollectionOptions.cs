using GuardSpace.Internal;
using static TorchSharp.torch;

namespace GuardSpace.Collection;

/// <summary>Options of <see cref="ActivationCovarianceCollector"/>.</summary>
public sealed class CovarianceCollectionOptions
{
    /// <summary>
    /// How each sample's activations are scaled before accumulating.
    /// Default: <see cref="ActivationScaling.PerSampleMaxAbs"/> (the official code's behaviour).
    /// </summary>
    public ActivationScaling Scaling { get; set; } = ActivationScaling.PerSampleMaxAbs;

    /// <summary>
    /// The dtype the covariance sums are accumulated in: <see cref="ScalarType.Float64"/> (the default) or
    /// <see cref="ScalarType.Float32"/> (half the memory, about 1e-7 relative rounding per addition). Other types are rejected.
    /// </summary>
    public ScalarType AccumulationType { get; set; } = ScalarType.Float64;

    /// <summary>
    /// When true (the default), layers that receive the same input tensor in a forward pass (q/k/v; gate/up)
    /// accumulate and store one covariance together. When false, every layer gets its own copy.
    /// </summary>
    public bool ShareCovarianceForSharedInputs { get; set; } = true;

    /// <summary>
    /// Throws one <see cref="ArgumentException"/> listing every unsupported value; its
    /// <see cref="ArgumentException.ParamName"/> is the first offending property.
    /// </summary>
    public void Validate()
    {
        var errors = new OptionErrors(nameof(CovarianceCollectionOptions));
        AddErrors(errors);
        errors.ThrowIfAny();
    }

    /// <summary>Records every unsupported value in <paramref name="errors"/>.</summary>
    internal void AddErrors(OptionErrors errors)
    {
        errors.Check(Enum.IsDefined(Scaling), nameof(Scaling),
            $"= {(int)Scaling} is not an {nameof(ActivationScaling)} value; use {nameof(ActivationScaling.PerSampleMaxAbs)} or {nameof(ActivationScaling.None)}.");
        errors.Check(AccumulationType is ScalarType.Float64 or ScalarType.Float32, nameof(AccumulationType),
            $"= {AccumulationType} is not supported; covariances accumulate in Float64 (default) or Float32.");
    }

    internal CovarianceCollectionOptions Clone() => new()
    {
        Scaling = Scaling,
        AccumulationType = AccumulationType,
        ShareCovarianceForSharedInputs = ShareCovarianceForSharedInputs,
    };
}
