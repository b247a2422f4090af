using GuardSpace.Collection;
using GuardSpace.Decomposition;
using GuardSpace.Internal;
using GuardSpace.Projection;
using GuardSpace.Targeting;

namespace GuardSpace.Adapters;

/// <summary>
/// Options of <see cref="GuardedModel.Attach"/>. Defaults give GuardSpace's safety-subspace adapters (stage I) on every Linear
/// layer but the output head; <see cref="Official"/> gives the paper's method with its null-space projection.
/// </summary>
public sealed class GuardedLoraOptions
{
    /// <summary>Adapter rank r. Default 8. Between 1 and min(out, in) of every targeted layer.</summary>
    public int Rank { get; set; } = 8;

    /// <summary>
    /// Initialisation method. Default <see cref="InitializationMethod.CorDAKpm"/>: GuardSpace's stage I (the large
    /// components of <c>W C_s</c> stay frozen, the r smallest start the adapter) without stage II's projector. The default
    /// protects the refusals through the <see cref="Behaviour.RefusalConstraint"/> and the <see cref="Behaviour.PoisonScreen"/>
    /// instead: a projector would blind the adapter to exactly the inputs whose outputs the constraint must repair
    /// (docs/concepts.md, "Protection and capacity", has the measurements). <see cref="InitializationMethod.GuardSpace"/>
    /// or <see cref="Official"/> gives the null-space projection.
    /// </summary>
    public InitializationMethod Method { get; set; } = InitializationMethod.CorDAKpm;

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

    /// <summary>
    /// The penalty weight the capacity-aware default uses for projected methods when <see cref="HarmfulDriftPenalty"/> is
    /// not set (docs/concepts.md, "Protection and capacity", shows how it was chosen).
    /// </summary>
    public const double DefaultHarmfulDriftPenalty = 300;

    /// <summary>
    /// Weight lambda of the harmful-drift penalty <c>lambda * sum_l ||dW_l C_h,l^(1/2)||_F^2 / ||W_l C_h,l^(1/2)||_F^2</c>: the
    /// squared relative change of every guarded layer's outputs on the harmful calibration activations, added to the
    /// gradients by the optimizer hook (exact and cheap, from the stored covariance factor; no forward pass). It restrains
    /// the adapter along the directions the projector leaves free but that still carry some harmful energy.
    /// Default null: <see cref="DefaultHarmfulDriftPenalty"/> for methods with a projector (GuardSpace, NullSpace-LoRA),
    /// 0 for the others. Set it to apply a penalty to any method (which then needs harmful calibration data). Non-negative.
    /// </summary>
    public double? HarmfulDriftPenalty { get; set; }

    /// <summary>
    /// The floor of the harmful covariance inside the drift penalty, as a fraction epsilon of its mean eigenvalue
    /// <c>tr(C_h) / n</c>: the penalty becomes <c>lambda * sum_l ||dW_l (C_h,l + epsilon mean(mu_l) I)^(1/2)||_F^2 / ||W_l C_h,l^(1/2)||_F^2</c>,
    /// as if every input direction carried at least that much harmful energy. Directions the calibration prompts never
    /// reached (an exact null space) are then not free: unseen harmful prompts may use them. The safety monitor is not
    /// affected (it reports the exact change on the calibration activations). Default <see cref="DefaultHarmfulDriftFloor"/>;
    /// it acts only where the penalty is on. Finite and >= 0.
    /// </summary>
    public double HarmfulDriftFloor { get; set; } = DefaultHarmfulDriftFloor;

    /// <summary>
    /// The default <see cref="HarmfulDriftFloor"/>, 0.1 (docs/concepts.md, "Protection and capacity", shows how it was chosen).
    /// </summary>
    public const double DefaultHarmfulDriftFloor = 0.1;

    /// <summary>
    /// Keeps the harmful covariance factors so that <see cref="GuardedModel.MeasureHarmfulDrift"/> works, for any method
    /// (unprojected methods then need harmful calibration data too). Implied by a positive penalty.
    /// Default false.
    /// </summary>
    public bool TrackHarmfulDrift { get; set; }

    /// <summary>The penalty weight in effect: <see cref="HarmfulDriftPenalty"/>, or the method's default.</summary>
    public double EffectiveHarmfulDriftPenalty => HarmfulDriftPenalty ?? (Method.UsesProjector() ? DefaultHarmfulDriftPenalty : 0);

    /// <summary>True when the harmful drift is tracked (<see cref="TrackHarmfulDrift"/> or a positive penalty).</summary>
    internal bool TracksHarmfulDrift => TrackHarmfulDrift || EffectiveHarmfulDriftPenalty > 0;

    /// <summary>Options of the safety-subspace decomposition (its <see cref="SafetySubspaceOptions.Method"/> is set from <see cref="Method"/>).</summary>
    public SafetySubspaceOptions Subspace { get; set; } = new();

    /// <summary>
    /// Options of the null-space projectors. Default: the capacity-aware rule of <see cref="CapacityAwareNullSpace"/> (the
    /// official threshold where it leaves at least 1/8 of a layer's input directions free, the 99% energy rule where it
    /// does not). <see cref="Official"/> gives the paper's rule.
    /// </summary>
    public NullSpaceOptions NullSpace { get; set; } = CapacityAwareNullSpace();

    /// <summary>
    /// The default null-space options: the official relative threshold, and for every layer where it leaves fewer than 1/8
    /// of the input directions free (often all but a few with a broad harmful set), the energy rule protecting 99% of the
    /// harmful trace instead. Layers with a large exact null space keep it exactly.
    /// </summary>
    public static NullSpaceOptions CapacityAwareNullSpace() => new()
    {
        EmptyPolicy = EmptyNullSpacePolicy.FallBackToEnergy,
        MinimumNullFraction = 0.125,
        EnergyFraction = 0.99,
    };

    /// <summary>
    /// The paper's official configuration (arXiv 2510.14301 and its code): GuardSpace initialisation, the relative threshold
    /// <c>mu &lt;= max(1e-8, 1e-6 max mu)</c>, layers without a null space frozen, no drift penalty. It protects exactly on the
    /// calibration prompts, and with a broad harmful set it leaves most layers frozen (docs/concepts.md).
    /// </summary>
    public static GuardedLoraOptions Official() => new()
    {
        Method = InitializationMethod.GuardSpace,
        NullSpace = new NullSpaceOptions(),
        HarmfulDriftPenalty = 0,
        HarmfulDriftFloor = 0,
    };

    /// <summary>
    /// Per-layer null-space options: the first override that selects a layer replaces <see cref="NullSpace"/> for it (for
    /// example a stricter rule for the attention projections). Default empty.
    /// </summary>
    public IList<NullSpaceOverride> NullSpaceOverrides { get; set; } = [];

    /// <summary>The null-space options of <paramref name="layer"/>: its first matching override, else <see cref="NullSpace"/>.</summary>
    public NullSpaceOptions NullSpaceFor(string layer)
    {
        ArgumentNullException.ThrowIfNull(layer);
        return NullSpaceOverrides.FirstOrDefault(o => o.Layers.IsMatch(layer))?.Options ?? NullSpace;
    }

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
        HarmfulDriftPenalty = HarmfulDriftPenalty,
        HarmfulDriftFloor = HarmfulDriftFloor,
        TrackHarmfulDrift = TrackHarmfulDrift,
        Subspace = Subspace.Clone(),
        NullSpace = NullSpace.Clone(),
        NullSpaceOverrides = [.. NullSpaceOverrides.Select(o => o.Clone())],
        Collection = Collection.Clone(),
    };

    /// <summary>
    /// Throws one <see cref="ArgumentException"/> listing every invalid option, its own and its sub-options' (for example
    /// <c>GuardedLoraOptions.NullSpace.EnergyFraction</c>); <see cref="ArgumentException.ParamName"/> is the path of the
    /// first offending property (<c>Rank</c>, <c>NullSpace.EnergyFraction</c>, ...).
    /// </summary>
    public void Validate()
    {
        var errors = new OptionErrors(nameof(GuardedLoraOptions));
        errors.Check(Rank > 0, nameof(Rank), $"must be positive (default 8); got {Rank}.");
        errors.Check(Enum.IsDefined(Method), nameof(Method), $"is {Method}, not a defined InitializationMethod.");
        errors.Check(double.IsFinite(Scale) && Scale != 0, nameof(Scale), $"must be finite and non-zero (default 1); got {Scale}.");
        errors.Check(Targets is not null, nameof(Targets), "must be set (default TargetModules.AllLinear()).");
        errors.Check(Subspace is not null, nameof(Subspace), "must be set (default new SafetySubspaceOptions()).");
        errors.Check(NullSpace is not null, nameof(NullSpace), "must be set (default new NullSpaceOptions()).");
        errors.Check(Collection is not null, nameof(Collection), "must be set (default new CovarianceCollectionOptions()).");
        Subspace?.AddErrors(errors.Nested(nameof(Subspace)));
        NullSpace?.AddErrors(errors.Nested(nameof(NullSpace)));
        Collection?.AddErrors(errors.Nested(nameof(Collection)));
        errors.Check(HarmfulDriftPenalty is null || (double.IsFinite(HarmfulDriftPenalty.Value) && HarmfulDriftPenalty >= 0), nameof(HarmfulDriftPenalty), $"must be null (the method's default) or finite and >= 0; got {HarmfulDriftPenalty}.");
        errors.Check(double.IsFinite(HarmfulDriftFloor) && HarmfulDriftFloor >= 0, nameof(HarmfulDriftFloor), $"must be finite and >= 0 (default 0.1); got {HarmfulDriftFloor}.");
        errors.Check(NullSpaceOverrides is not null && NullSpaceOverrides.All(o => o is not null), nameof(NullSpaceOverrides), "must be a list without null entries (default empty).");
        if (NullSpaceOverrides is not null)
        {
            for (var i = 0; i < NullSpaceOverrides.Count; i++)
            {
                NullSpaceOverrides[i]?.Options.AddErrors(errors.Nested($"{nameof(NullSpaceOverrides)}[{i}].Options"));
            }
        }

        errors.ThrowIfAny();
    }
}
