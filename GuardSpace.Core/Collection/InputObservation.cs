namespace GuardSpace.Collection;

/// <summary>One input tensor as seen by the layers of a group during one forward pass.</summary>
internal sealed class InputObservation(CovarianceAccumulator group, string firstLayer)
{
    public CovarianceAccumulator Group { get; } = group;

    public HashSet<string> Seen { get; } = new(StringComparer.Ordinal) { firstLayer };
}
