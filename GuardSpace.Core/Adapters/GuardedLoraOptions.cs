using GuardSpace.Collection;
using GuardSpace.Decomposition;
using GuardSpace.Projection;
using GuardSpace.Targeting;

namespace GuardSpace.Adapters;

/// <summary>Options of <see cref="GuardedModel.Attach"/>. Defaults give GuardSpace on every Linear layer but the output head.</summary>
public sealed class GuardedLoraOptions
{
    /// <summary>Adapter rank r. Default 8. Between 1 and min(out, in) of every targeted layer.</summary>
    public int Rank { get; set; } = 8;

    /// <summary>Initialisation method. Default <see cref="InitializationMethod.GuardSpace"/>.</summary>
    public InitializationMethod Method { get; set; } = InitializationMethod.GuardSpace;

    /// <summary>Which Linear layers to guard. Default <see cref="TargetModules.AllLinear"/> (all but the output head).</summary>
    public TargetModules Targets { get; set; } = TargetModules.AllLinear();

    /// <summary>
    /// Scale s of the adapter's contribution, <c>y = W' x + s B A x</c>. Default 1 (GuardSpace, PiSSA and CorDA use 1; the
    /// residual is always formed with the same s, so the model is unchanged at initialisation whatever s is).
    /// </summary>
    public double Scale { get; set; } = 1.0;

    /// <summary>Seed of the Kaiming initialisation of A for <see cref="InitializationMethod.Lora"/> and <see cref="InitializationMethod.NullSpaceLora"/>. Default 0.</summary>
    public long Seed { get; set; }

    /// <summary>
    /// Sets <c>requires_grad = false</c> on every parameter of the model that is not an adapter factor, so backward does no
    /// work for them. Default true. The flags are restored if the attachment fails.
    /// </summary>
    public bool FreezeBaseModel { get; set; } = true;

    /// <summary>Options of the safety-subspace decomposition (its <see cref="SafetySubspaceOptions.Method"/> is set from <see cref="Method"/>).</summary>
    public SafetySubspaceOptions Subspace { get; set; } = new();

    /// <summary>Options of the null-space projectors.</summary>
    public NullSpaceOptions NullSpace { get; set; } = new();

    /// <summary>Options of the activation-covariance collection run on the calibration prompts.</summary>
    public CovarianceCollectionOptions Collection { get; set; } = new();

    /// <summary>A deep copy (the sub-options are copied too).</summary>
    internal GuardedLoraOptions Clone() => new()
    {
        Rank = Rank,
        Method = Method,
        Targets = Targets,
        Scale = Scale,
        Seed = Seed,
        FreezeBaseModel = FreezeBaseModel,
        Subspace = Subspace.Clone(),
        NullSpace = NullSpace.Clone(),
        Collection = Collection.Clone(),
    };

    /// <summary>Throws <see cref="ArgumentException"/> naming the first invalid option.</summary>
    public void Validate()
    {
        if (Rank <= 0)
        {
            throw new ArgumentException($"GuardedLoraOptions.Rank must be positive (default 8); got {Rank}.");
        }

        if (!Enum.IsDefined(Method))
        {
            throw new ArgumentException($"GuardedLoraOptions.Method: {Method} is not a defined InitializationMethod.");
        }

        if (!double.IsFinite(Scale) || Scale == 0)
        {
            throw new ArgumentException($"GuardedLoraOptions.Scale must be finite and non-zero (default 1); got {Scale}.");
        }

        if (Targets is null)
        {
            throw new ArgumentException("GuardedLoraOptions.Targets must be set (default TargetModules.AllLinear()).");
        }

        ArgumentNullException.ThrowIfNull(Subspace, nameof(Subspace));
        ArgumentNullException.ThrowIfNull(NullSpace, nameof(NullSpace));
        ArgumentNullException.ThrowIfNull(Collection, nameof(Collection));
        Subspace.Validate();
        NullSpace.Validate();
        Collection.Validate();
    }
}
