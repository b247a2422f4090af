using System.Collections;
using System.Diagnostics.CodeAnalysis;
using System.Text.Json;
using GuardSpace.Storage;
using TorchSharp;
using static TorchSharp.torch;

namespace GuardSpace.Collection;

/// <summary>
/// The activation covariances of a set of Linear layers, one <see cref="LayerCovariance"/> per group of layers
/// that share an input. Look a covariance up by the name of any of its layers. Owns its covariances: disposing the
/// set disposes them.
/// </summary>
public sealed class CovarianceSet : IDisposable, IReadOnlyCollection<LayerCovariance>
{
    internal const string FormatName = "guardspace.covariance-set";
    internal const string FormatVersion = "1";

    private readonly List<LayerCovariance> covariances;
    private readonly Dictionary<string, LayerCovariance> byLayer = new(StringComparer.Ordinal);
    private bool disposed;

    internal CovarianceSet(IEnumerable<LayerCovariance> covariances, ActivationScaling scaling)
    {
        this.covariances = [.. covariances];
        Scaling = scaling;
        var names = new List<string>();
        foreach (var covariance in this.covariances)
        {
            foreach (var layer in covariance.Layers)
            {
                if (!byLayer.TryAdd(layer, covariance))
                {
                    throw new ArgumentException($"Layer '{layer}' belongs to two covariances ('{byLayer[layer].Key}' and '{covariance.Key}').");
                }

                names.Add(layer);
            }
        }

        LayerNames = names;
    }

    /// <summary>The number of distinct covariances (groups of layers sharing an input).</summary>
    public int Count => covariances.Count;

    /// <summary>Every layer covered by the set, grouped by covariance, in module order within each group.</summary>
    public IReadOnlyList<string> LayerNames { get; }

    /// <summary>The activation scaling the covariances were collected with.</summary>
    public ActivationScaling Scaling { get; }

    /// <summary>The covariance of the layer <paramref name="layerName"/> (any member of a shared group).</summary>
    /// <exception cref="KeyNotFoundException">The set has no covariance for that layer; the message lists the layers it has.</exception>
    public LayerCovariance this[string layerName]
    {
        get
        {
            ThrowIfDisposed();
            ArgumentNullException.ThrowIfNull(layerName);
            return byLayer.TryGetValue(layerName, out var covariance)
                ? covariance
                : throw new KeyNotFoundException($"The covariance set has no layer '{layerName}'. Layers: {string.Join(", ", LayerNames)}.");
        }
    }

    /// <summary>Looks up the covariance of <paramref name="layerName"/>; false when the set has none.</summary>
    public bool TryGet(string layerName, [MaybeNullWhen(false)] out LayerCovariance covariance)
    {
        ThrowIfDisposed();
        ArgumentNullException.ThrowIfNull(layerName);
        return byLayer.TryGetValue(layerName, out covariance);
    }

    /// <summary>
    /// Combines two sets collected on disjoint prompts (for example shards on several machines): sums, token counts
    /// and sample counts add. Both sets must cover the same layers with the same groups, widths, accumulation dtype and
    /// scaling, else <see cref="ArgumentException"/> names the difference. The result holds new tensors on the devices
    /// of <paramref name="a"/>; the inputs are left unchanged.
    /// </summary>
    public static CovarianceSet Merge(CovarianceSet a, CovarianceSet b)
    {
        ArgumentNullException.ThrowIfNull(a);
        ArgumentNullException.ThrowIfNull(b);
        a.ThrowIfDisposed();
        b.ThrowIfDisposed();
        if (a.Scaling != b.Scaling)
        {
            throw new ArgumentException($"Cannot merge covariance sets collected with different scaling ({a.Scaling} and {b.Scaling}).", nameof(b));
        }

        var onlyA = a.LayerNames.Except(b.LayerNames).ToList();
        var onlyB = b.LayerNames.Except(a.LayerNames).ToList();
        if (onlyA.Count > 0 || onlyB.Count > 0)
        {
            throw new ArgumentException(
                $"Cannot merge covariance sets over different layers: only in the first: [{string.Join(", ", onlyA)}]; only in the second: [{string.Join(", ", onlyB)}].",
                nameof(b));
        }

        var merged = new List<LayerCovariance>(a.Count);
        try
        {
            foreach (var ca in a.covariances)
            {
                var cb = b.byLayer[ca.Key];
                if (!ca.Layers.SequenceEqual(cb.Layers))
                {
                    throw new ArgumentException(
                        $"Cannot merge covariance sets with different groups of shared inputs: [{string.Join(", ", ca.Layers)}] against [{string.Join(", ", cb.Layers)}].",
                        nameof(b));
                }

                if (ca.InputWidth != cb.InputWidth)
                {
                    throw new ArgumentException($"Cannot merge: covariance '{ca.Key}' has input width {ca.InputWidth} in the first set and {cb.InputWidth} in the second.", nameof(b));
                }

                if (ca.Sum.dtype != cb.Sum.dtype)
                {
                    throw new ArgumentException($"Cannot merge: covariance '{ca.Key}' is {ca.Sum.dtype} in the first set and {cb.Sum.dtype} in the second.", nameof(b));
                }

                using var scope = NewDisposeScope();
                using var noGrad = no_grad();
                var sum = ca.Sum.add(cb.Sum.to(ca.Sum.device)).DetachFromDisposeScope();
                merged.Add(new LayerCovariance(ca.Layers, sum, ca.TokenCount + cb.TokenCount, ca.SampleCount + cb.SampleCount));
            }

            return new CovarianceSet(merged, a.Scaling);
        }
        catch
        {
            merged.ForEach(c => c.Dispose());
            throw;
        }
    }

    /// <summary>
    /// Saves the set as a safetensors file: one tensor per covariance, named by its <see cref="LayerCovariance.Key"/>,
    /// with the groups, counts and scaling as JSON in the <c>__metadata__</c> map. Overwrites atomically.
    /// </summary>
    public void Save(string path)
    {
        ThrowIfDisposed();
        var tensors = covariances.ToDictionary(c => c.Key, c => c.Sum, StringComparer.Ordinal);
        var metadata = new Dictionary<string, string>
        {
            ["format"] = FormatName,
            ["format_version"] = FormatVersion,
            ["scaling"] = Scaling.ToString(),
            ["groups"] = SerializeGroups(),
        };
        SafetensorsWriter.Write(path, tensors, metadata);
    }

    /// <summary>
    /// Loads a set written by <see cref="Save"/>, placing the sums on <paramref name="device"/> (the CPU by default).
    /// Throws <see cref="InvalidDataException"/> when the file is malformed or its content is inconsistent.
    /// </summary>
    public static CovarianceSet Load(string path, Device? device = null)
    {
        var (tensors, metadata) = SafetensorsReader.ReadAll(path, device);
        var built = new List<LayerCovariance>();
        try
        {
            return FromContent(path, tensors, metadata, built);
        }
        catch
        {
            built.ForEach(c => c.Dispose());
            foreach (var t in tensors.Values)
            {
                t.Dispose();
            }

            throw;
        }
    }

    /// <summary>Enumerates the covariances in module order of their keys.</summary>
    public IEnumerator<LayerCovariance> GetEnumerator()
    {
        ThrowIfDisposed();
        return covariances.GetEnumerator();
    }

    IEnumerator IEnumerable.GetEnumerator() => GetEnumerator();

    /// <summary>Disposes every covariance of the set.</summary>
    public void Dispose()
    {
        if (disposed)
        {
            return;
        }

        disposed = true;
        foreach (var covariance in covariances)
        {
            covariance.Dispose();
        }
    }

    private string SerializeGroups()
    {
        using var buffer = new MemoryStream();
        using (var writer = new Utf8JsonWriter(buffer))
        {
            writer.WriteStartArray();
            foreach (var c in covariances)
            {
                writer.WriteStartObject();
                writer.WriteString("key", c.Key);
                writer.WriteStartArray("layers");
                foreach (var layer in c.Layers)
                {
                    writer.WriteStringValue(layer);
                }

                writer.WriteEndArray();
                writer.WriteNumber("input_width", c.InputWidth);
                writer.WriteNumber("token_count", c.TokenCount);
                writer.WriteNumber("sample_count", c.SampleCount);
                writer.WriteEndObject();
            }

            writer.WriteEndArray();
        }

        return System.Text.Encoding.UTF8.GetString(buffer.ToArray());
    }

    private static CovarianceSet FromContent(string path, Dictionary<string, Tensor> tensors, Dictionary<string, string> metadata, List<LayerCovariance> built)
    {
        InvalidDataException Bad(string what) => new($"Covariance set file '{path}' is invalid: {what}");

        if (!metadata.TryGetValue("format", out var format) || format != FormatName)
        {
            throw Bad($"its metadata has no \"format\": \"{FormatName}\" entry; it was not written by CovarianceSet.Save.");
        }

        if (!metadata.TryGetValue("format_version", out var version) || version != FormatVersion)
        {
            throw Bad($"format version '{version}' is not supported (expected '{FormatVersion}').");
        }

        if (!metadata.TryGetValue("scaling", out var scalingText) || !Enum.TryParse<ActivationScaling>(scalingText, ignoreCase: false, out var scaling)
            || !Enum.IsDefined(scaling) || int.TryParse(scalingText, out _))
        {
            throw Bad($"scaling '{scalingText}' is not an {nameof(ActivationScaling)} value.");
        }

        if (!metadata.TryGetValue("groups", out var groupsText))
        {
            throw Bad("its metadata has no \"groups\" entry.");
        }

        JsonDocument document;
        try
        {
            document = JsonDocument.Parse(groupsText);
        }
        catch (JsonException ex)
        {
            throw new InvalidDataException($"Covariance set file '{path}' is invalid: its \"groups\" metadata is not valid JSON ({ex.Message}).", ex);
        }

        using (document)
        {
            if (document.RootElement.ValueKind != JsonValueKind.Array)
            {
                throw Bad("its \"groups\" metadata is not a JSON array.");
            }

            var layersSeen = new HashSet<string>(StringComparer.Ordinal);
            foreach (var group in document.RootElement.EnumerateArray())
            {
                if (group.ValueKind != JsonValueKind.Object
                    || !group.TryGetProperty("key", out var keyElement) || keyElement.ValueKind != JsonValueKind.String
                    || !group.TryGetProperty("layers", out var layersElement) || layersElement.ValueKind != JsonValueKind.Array)
                {
                    throw Bad($"group entry {group} lacks a string \"key\" or a \"layers\" array.");
                }

                var key = keyElement.GetString()!;
                var layers = new List<string>();
                foreach (var l in layersElement.EnumerateArray())
                {
                    if (l.ValueKind != JsonValueKind.String || string.IsNullOrEmpty(l.GetString()))
                    {
                        throw Bad($"group '{key}' lists a layer name that is not a non-empty string.");
                    }

                    layers.Add(l.GetString()!);
                }

                if (layers.Count == 0 || layers[0] != key)
                {
                    throw Bad($"group '{key}' must list its key as its first layer, but lists [{string.Join(", ", layers)}].");
                }

                foreach (var layer in layers)
                {
                    if (!layersSeen.Add(layer))
                    {
                        throw Bad($"layer '{layer}' appears in more than one group.");
                    }
                }

                var width = ReadCount(group, "input_width", key, path);
                var tokens = ReadCount(group, "token_count", key, path);
                var samples = ReadCount(group, "sample_count", key, path);
                if (samples > tokens)
                {
                    throw Bad($"group '{key}' has {samples} samples but only {tokens} tokens.");
                }

                if (!tensors.TryGetValue(key, out var sum))
                {
                    throw Bad($"group '{key}' has no tensor named '{key}' (or two groups share that key).");
                }

                if (sum.dtype is not (ScalarType.Float64 or ScalarType.Float32))
                {
                    throw Bad($"covariance '{key}' is {sum.dtype}; expected Float64 or Float32.");
                }

                if (sum.dim() != 2 || sum.shape[0] != width || sum.shape[1] != width)
                {
                    throw Bad($"covariance '{key}' has shape [{string.Join(", ", sum.shape)}] but its metadata says input width {width}.");
                }

                sum.DetachFromDisposeScope();
                built.Add(new LayerCovariance(layers, sum, tokens, samples));
                tensors.Remove(key);
            }

            if (tensors.Count > 0)
            {
                throw Bad($"tensors [{string.Join(", ", tensors.Keys)}] belong to no group of the metadata.");
            }

            return new CovarianceSet(built, scaling);
        }
    }

    private static long ReadCount(JsonElement group, string name, string key, string path)
    {
        if (!group.TryGetProperty(name, out var element) || element.ValueKind != JsonValueKind.Number || !element.TryGetInt64(out var value) || value < 0)
        {
            throw new InvalidDataException($"Covariance set file '{path}' is invalid: group '{key}' has no non-negative integer \"{name}\".");
        }

        return value;
    }

    private void ThrowIfDisposed() => ObjectDisposedException.ThrowIf(disposed, this);
}
