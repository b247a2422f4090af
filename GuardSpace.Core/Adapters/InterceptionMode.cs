namespace GuardSpace.Adapters;

/// <summary>How a target layer was intercepted.</summary>
public enum InterceptionMode
{
    /// <summary>The Linear was replaced by a <see cref="GuardedLoraAdapter"/> (its parent's field, list or registry now holds the adapter).</summary>
    Replaced,

    /// <summary>
    /// The Linear could not be replaced (for example a field declared as the sealed <c>Linear</c>): it keeps the frozen
    /// residual and a forward hook adds the adapter, which is registered beside it as <c>&lt;name&gt;_guard</c>. The parent
    /// must call the Linear through <c>call()</c>.
    /// </summary>
    ForwardHook,
}
