namespace GuardSpace.Adapters;

/// <summary>Progress of <see cref="GuardedModel.Attach"/> and <see cref="GuardedModel.Load"/>.</summary>
/// <param name="Stage">What is running.</param>
/// <param name="Done">Items done in this stage.</param>
/// <param name="Total">Items in this stage.</param>
/// <param name="Current">The layer (or file) being processed, if any.</param>
public readonly record struct AttachProgress(AttachStage Stage, int Done, int Total, string? Current);
