namespace GuardSpace.Projection;

/// <summary>What to do when a layer's harmful activations span its whole input space, leaving no null space.</summary>
public enum EmptyNullSpacePolicy
{
    /// <summary>
    /// Keep the layer's adapter frozen (the projector is zero) and log a warning with the layer name. This is what
    /// the official method does in effect (silently); the default, because with many calibration tokens it happens
    /// in many layers.
    /// </summary>
    FreezeLayer,

    /// <summary>Throw <see cref="InvalidOperationException"/> naming the layer.</summary>
    Throw,

    /// <summary>Refit that layer with the <see cref="NullSpaceThresholdRule.EnergyFraction"/> rule and log a warning.</summary>
    FallBackToEnergy,
}
