namespace GuardSpace.Behaviour;

/// <summary>The training set after <see cref="PoisonScreen.Apply{T}"/>, and what the screen flagged.</summary>
/// <typeparam name="T">The caller's example type.</typeparam>
/// <param name="Items">The examples to train on: all of them (<see cref="ScreenPolicy.Keep"/>), the unflagged ones in order
/// (<see cref="ScreenPolicy.Drop"/>), or all of them with the flagged ones relabelled (<see cref="ScreenPolicy.Relabel"/>).</param>
/// <param name="Flagged">Indices, into the screened list, of the examples whose refusal score reached the threshold.</param>
/// <param name="Threshold">The screen's threshold.</param>
/// <param name="Policy">The policy applied.</param>
public sealed record ScreenResult<T>(IReadOnlyList<T> Items, IReadOnlyList<int> Flagged, double Threshold, ScreenPolicy Policy);
