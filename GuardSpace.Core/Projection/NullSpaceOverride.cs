using GuardSpace.Targeting;

namespace GuardSpace.Projection;

/// <summary>
/// Null-space options for some of the guarded layers (<see cref="Adapters.GuardedLoraOptions.NullSpaceOverrides"/>): the
/// first override whose <see cref="Layers"/> selects a layer replaces <see cref="Adapters.GuardedLoraOptions.NullSpace"/>
/// for it. Layers that share a covariance (q/k/v, gate/up) share one projector, so they must resolve to the same options.
/// </summary>
public sealed class NullSpaceOverride
{
    /// <summary>Creates an override.</summary>
    /// <param name="layers">The layers it applies to.</param>
    /// <param name="options">Their null-space options (validated with the rest of the options).</param>
    public NullSpaceOverride(TargetModules layers, NullSpaceOptions options)
    {
        Layers = layers ?? throw new ArgumentNullException(nameof(layers));
        Options = options ?? throw new ArgumentNullException(nameof(options));
    }

    /// <summary>The layers it applies to.</summary>
    public TargetModules Layers { get; }

    /// <summary>Their null-space options.</summary>
    public NullSpaceOptions Options { get; }

    /// <summary>A copy with copied options.</summary>
    internal NullSpaceOverride Clone() => new(Layers, Options.Clone());
}
