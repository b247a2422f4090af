namespace GuardSpace.Decomposition;

/// <summary>Progress of a whole-model decomposition.</summary>
/// <param name="LayersDone">Layers decomposed so far.</param>
/// <param name="LayerCount">Layers to decompose.</param>
/// <param name="CurrentLayer">The layer just finished.</param>
public readonly record struct DecompositionProgress(int LayersDone, int LayerCount, string CurrentLayer);
