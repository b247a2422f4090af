using GuardSpace.Internal;
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

    /// <summary>
    /// The smallest null space a layer may keep, as a fraction of its input width: a layer whose null space under
    /// <see cref="Rule"/> has fewer than <c>max(1, ceil(MinimumNullFraction * n))</c> directions is "too small", and
    /// <see cref="EmptyPolicy"/> applies to it (<see cref="EmptyNullSpacePolicy.FallBackToEnergy"/> then takes the energy
    /// rule's null space if that is larger; layers with a large enough null space keep it exactly). Default 0: only an empty
    /// null space counts as too small (the official behaviour). In [0, 1).
    /// </summary>
    public double MinimumNullFraction { get; set; }

    /// <summary>What to do when a layer has no null space. Default <see cref="EmptyNullSpacePolicy.FreezeLayer"/>.</summary>
    public EmptyNullSpacePolicy EmptyPolicy { get; set; } = EmptyNullSpacePolicy.FreezeLayer;

    /// <summary>
    /// Precision of the eigendecomposition. Default <see cref="ScalarType.Float64"/>; <see cref="ScalarType.Float32"/>
    /// allowed. The stored basis is at least float32 (half precision breaks idempotence).
    /// </summary>
    public ScalarType ComputeType { get; set; } = ScalarType.Float64;

    /// <summary>
    /// Throws one <see cref="ArgumentException"/> listing every invalid option with its allowed range; its
    /// <see cref="ArgumentException.ParamName"/> is the first offending property.
    /// </summary>
    public void Validate()
    {
        var errors = new OptionErrors(nameof(NullSpaceOptions));
        AddErrors(errors);
        errors.ThrowIfAny();
    }

    /// <summary>Records every invalid option in <paramref name="errors"/>.</summary>
    internal void AddErrors(OptionErrors errors)
    {
        errors.Check(Enum.IsDefined(Rule), nameof(Rule), $"is {Rule}, not a defined NullSpaceThresholdRule.");
        errors.Check(Enum.IsDefined(EmptyPolicy), nameof(EmptyPolicy), $"is {EmptyPolicy}, not a defined EmptyNullSpacePolicy.");
        errors.Check(RelativeThreshold > 0 && RelativeThreshold < 1, nameof(RelativeThreshold), $"must be in (0, 1) (default 1e-6); got {RelativeThreshold}.");
        errors.Check(AbsoluteFloor >= 0 && !double.IsInfinity(AbsoluteFloor), nameof(AbsoluteFloor), $"must be finite and >= 0 (default 1e-8); got {AbsoluteFloor}.");
        errors.Check(AbsoluteThreshold >= 0 && !double.IsInfinity(AbsoluteThreshold), nameof(AbsoluteThreshold), $"must be finite and >= 0 (default 2e-2); got {AbsoluteThreshold}.");
        errors.Check(EnergyFraction > 0 && EnergyFraction <= 1, nameof(EnergyFraction), $"must be in (0, 1] (default 0.99); got {EnergyFraction}.");
        errors.Check(MinimumNullFraction >= 0 && MinimumNullFraction < 1, nameof(MinimumNullFraction), $"must be in [0, 1) (default 0); got {MinimumNullFraction}.");
        errors.Check(ComputeType is ScalarType.Float32 or ScalarType.Float64, nameof(ComputeType), $"must be Float32 or Float64 (default Float64); got {ComputeType}.");
    }

    /// <summary>A copy of these options.</summary>
    internal NullSpaceOptions Clone() => (NullSpaceOptions)MemberwiseClone();
}
