using static TorchSharp.torch;

namespace GuardSpace.Behaviour;

/// <summary>
/// The aligned model's refusal behaviour as the <see cref="RefusalConstraint"/> sees it: two callbacks over (harmful prompt,
/// aligned refusal) pairs, written by the caller for their model (GuardSpace.Models has them for causal language models).
/// Keep the two splits disjoint: the validation split decides the multiplier, the training split is what the model is
/// trained on, so a constraint that only memorised its replay data would show as a rising validation loss.
/// </summary>
public sealed class RefusalObjective
{
    /// <summary>
    /// The refusal loss of one training batch: a differentiable scalar (for example the mean cross-entropy of the aligned
    /// refusal's tokens given a few harmful prompts, answer tokens only), computed with the model in its training mode.
    /// Called once per optimizer step while the multiplier is positive, inside the step's dispose scope.
    /// </summary>
    public required Func<Tensor> BatchLoss { get; init; }

    /// <summary>
    /// The refusal loss on the validation split, as a plain number in the same units as <see cref="BatchLoss"/> (nats per
    /// answer token for a cross-entropy). Deterministic: the same pairs every call, no sampling. Called under no_grad
    /// when the constraint is created (its baseline) and every <see cref="RefusalConstraintOptions.EvaluateEvery"/> steps.
    /// </summary>
    public required Func<double> ValidationLoss { get; init; }

    /// <summary>
    /// Optional: the share (0 to 1) of validation prompts the model still refuses, by greedy decoding and the caller's
    /// judge. Generation is costly, so it is read only every <see cref="RefusalConstraintOptions.RefusalRateEvery"/>
    /// evaluations, for the monitor; it never steers the multiplier. Null: not measured.
    /// </summary>
    public Func<double>? ValidationRefusalRate { get; init; }
}
