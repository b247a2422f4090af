using static TorchSharp.torch;

namespace GuardSpace.Projection;

/// <summary>Options of <see cref="NullSpaceProjector"/>. Defaults follow the official GuardSpace code.</summary>
public sealed class NullSpaceOptions
{
    /// <summary>The threshold rule. Default <see cref="NullSpaceThresholdRule.Relative"/> (official).</summary>
    public NullSpaceThresholdRule Rule { get; set; } = NullSpaceThresholdRule.Relative;

    /// <summary>Relative rule: fraction of the largest eigenvalue. Default 1e-6 (official). In (0, 1).</summary>
    public double RelativeThreshold { get; set; } = 1e-6;

    /// <summary>Relative rule: absolute floor of the threshold. Default 1e-8 (official). Non-negative.</summary>
    public double AbsoluteFloor { get; set; } = 1e-8;

    /// <summary>Absolute rule: the threshold on eigenvalues of the covariance sum. Default 2e-2 (AlphaEdit). Non-negative.</summary>
    public double AbsoluteThreshold { get; set; } = 2e-2;

    /// <summary>Energy rule (and the fall-back): fraction of the trace to protect. Default 0.99. In (0, 1].</summary>
    public double EnergyFraction { get; set; } = 0.99;

    /// <summary>What to do when a layer has no null space. Default <see cref="EmptyNullSpacePolicy.FreezeLayer"/>.</summary>
    public EmptyNullSpacePolicy EmptyPolicy { get; set; } = EmptyNullSpacePolicy.FreezeLayer;

    /// <summary>
    /// Precision of the eigendecomposition. Default <see cref="ScalarType.Float64"/>; <see cref="ScalarType.Float32"/>
    /// allowed. The stored basis is at least float32 (half precision breaks idempotence).
    /// </summary>
    public ScalarType ComputeType { get; set; } = ScalarType.Float64;

    /// <summary>Throws <see cref="ArgumentException"/> naming the first invalid option and its allowed range.</summary>
    public void Validate()
    {
        if (!Enum.IsDefined(Rule))
        {
            throw new ArgumentException($"NullSpaceOptions.Rule: {Rule} is not a defined NullSpaceThresholdRule.");
        }

        if (!Enum.IsDefined(EmptyPolicy))
        {
            throw new ArgumentException($"NullSpaceOptions.EmptyPolicy: {EmptyPolicy} is not a defined EmptyNullSpacePolicy.");
        }

        if (!(RelativeThreshold > 0 && RelativeThreshold < 1))
        {
            throw new ArgumentException($"NullSpaceOptions.RelativeThreshold must be in (0, 1) (default 1e-6); got {RelativeThreshold}.");
        }

        if (!(AbsoluteFloor >= 0) || double.IsInfinity(AbsoluteFloor))
        {
            throw new ArgumentException($"NullSpaceOptions.AbsoluteFloor must be finite and >= 0 (default 1e-8); got {AbsoluteFloor}.");
        }

        if (!(AbsoluteThreshold >= 0) || double.IsInfinity(AbsoluteThreshold))
        {
            throw new ArgumentException($"NullSpaceOptions.AbsoluteThreshold must be finite and >= 0 (default 2e-2); got {AbsoluteThreshold}.");
        }

        if (!(EnergyFraction > 0 && EnergyFraction <= 1))
        {
            throw new ArgumentException($"NullSpaceOptions.EnergyFraction must be in (0, 1] (default 0.99); got {EnergyFraction}.");
        }

        if (ComputeType is not (ScalarType.Float32 or ScalarType.Float64))
        {
            throw new ArgumentException($"NullSpaceOptions.ComputeType must be Float32 or Float64 (default Float64); got {ComputeType}.");
        }
    }

    /// <summary>A copy of these options.</summary>
    internal NullSpaceOptions Clone() => (NullSpaceOptions)MemberwiseClone();
}
