namespace GuardSpace.Collection;

/// <summary>How each sample's activations are scaled before their outer products are accumulated.</summary>
public enum ActivationScaling
{
    /// <summary>
    /// Each sample's (unmasked) activations at a layer are divided by their largest absolute value before
    /// accumulating, as the official GuardSpace code does. The default, for fidelity to the paper.
    /// </summary>
    PerSampleMaxAbs,

    /// <summary>No scaling: the covariance is the plain sum of <c>x x^T</c> over all unmasked tokens.</summary>
    None,
}
