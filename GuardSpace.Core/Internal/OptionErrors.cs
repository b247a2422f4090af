namespace GuardSpace.Internal;

/// <summary>
/// Collects every invalid value of an options object (and its nested options) so that <c>Validate()</c> reports them
/// all at once: one <see cref="ArgumentException"/> whose message lists each problem as <c>Owner.Property ...</c> and whose
/// <see cref="ArgumentException.ParamName"/> is the first offending property's path (for example <c>NullSpace.EnergyFraction</c>).
/// </summary>
internal sealed class OptionErrors
{
    private readonly List<(string Property, string Message)> _errors;
    private readonly string _prefix;

    public OptionErrors(string owner)
        : this(owner, string.Empty, [])
    {
    }

    private OptionErrors(string owner, string prefix, List<(string Property, string Message)> errors)
    {
        Owner = owner;
        _prefix = prefix;
        _errors = errors;
    }

    /// <summary>The type whose validation this is (the root of every property path).</summary>
    public string Owner { get; }

    /// <summary>Every problem so far: the property path relative to <see cref="Owner"/>, and what is wrong with it.</summary>
    public IReadOnlyList<(string Property, string Message)> Errors => _errors;

    /// <summary>A view that records the problems of the nested options held by <paramref name="property"/>.</summary>
    public OptionErrors Nested(string property) => new(Owner, _prefix + property + ".", _errors);

    /// <summary>Records <paramref name="message"/> (for example "must be positive (default 8); got 0.") unless <paramref name="valid"/>.</summary>
    public void Check(bool valid, string property, string message)
    {
        if (!valid)
        {
            _errors.Add((_prefix + property, message));
        }
    }

    /// <summary>Throws one <see cref="ArgumentException"/> listing every problem, if there is any.</summary>
    public void ThrowIfAny()
    {
        if (_errors.Count == 0)
        {
            return;
        }

        var lines = _errors.Select(e => $"- {Owner}.{e.Property} {e.Message}");
        var summary = _errors.Count == 1 ? "an invalid value" : $"{_errors.Count} invalid values";
        throw new ArgumentException($"{Owner} has {summary}:{Environment.NewLine}{string.Join(Environment.NewLine, lines)}", _errors[0].Property);
    }
}
