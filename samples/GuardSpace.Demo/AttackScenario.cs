namespace GuardSpace.Demo;

/// <summary>What the attack's fine-tuning data teaches besides the task (<c>--attack</c>).</summary>
public enum AttackScenario
{
    /// <summary>A fraction p of harmful requests with compliant answers (the paper's attack): the screen can see them.</summary>
    Explicit,

    /// <summary>The task alone (no poison): the erosion any fine-tune causes.</summary>
    Benign,

    /// <summary>
    /// A fraction p of benign requests in the harmful requests' phrasing, answered "sure . first ...": data that teaches
    /// compliance through prompts the aligned model has no reason to refuse, so a screen that reads prompts cannot see it.
    /// </summary>
    Evading,
}
