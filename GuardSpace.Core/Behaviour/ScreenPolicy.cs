namespace GuardSpace.Behaviour;

/// <summary>What <see cref="PoisonScreen.Apply{T}"/> does with a training example the aligned model would refuse.</summary>
public enum ScreenPolicy
{
    /// <summary>Keep every example; only report what was flagged.</summary>
    Keep,

    /// <summary>Leave flagged examples out of the training set (the default: it cannot teach anything new).</summary>
    Drop,

    /// <summary>Replace each flagged example by the caller's relabelled one (for example the prompt with the aligned refusal).</summary>
    Relabel,
}
