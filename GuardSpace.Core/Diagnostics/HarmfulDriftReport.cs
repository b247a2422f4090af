namespace GuardSpace.Diagnostics;

/// <summary>The relative change of one guarded layer's outputs on the harmful calibration activations since attach.</summary>
/// <param name="Layer">The layer's dotted module path.</param>
/// <param name="RelativeChange"><c>||dW C_h^(1/2)||_F / ||W C_h^(1/2)||_F</c>: 0 when the harmful outputs are unchanged.</param>
public sealed record LayerHarmfulDrift(string Layer, double RelativeChange);

/// <summary>What <see cref="GuardedModel.MeasureHarmfulDrift"/> found: per-layer changes and their summary.</summary>
public sealed class HarmfulDriftReport
{
    /// <summary>Creates a report from per-layer figures.</summary>
    /// <param name="layers">The layers, in module order.</param>
    public HarmfulDriftReport(IReadOnlyList<LayerHarmfulDrift> layers)
    {
        ArgumentNullException.ThrowIfNull(layers);
        Layers = layers;
        var max = layers.Count == 0 ? null : layers.MaxBy(l => l.RelativeChange);
        Max = max?.RelativeChange ?? 0;
        MaxLayer = max?.Layer;
        RootMeanSquare = layers.Count == 0 ? 0 : Math.Sqrt(layers.Average(l => l.RelativeChange * l.RelativeChange));
    }

    /// <summary>Every tracked layer, in module order.</summary>
    public IReadOnlyList<LayerHarmfulDrift> Layers { get; }

    /// <summary>The largest relative change.</summary>
    public double Max { get; }

    /// <summary>The layer with the largest change, or null when no layer is tracked.</summary>
    public string? MaxLayer { get; }

    /// <summary>The root mean square of the per-layer relative changes.</summary>
    public double RootMeanSquare { get; }
}
