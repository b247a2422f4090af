using System.Text.Json.Nodes;

namespace GuardSpace.Models.Llama.Config;

/// <summary>Typed access to the fields of one JSON object of <c>config.json</c>, with errors that name the file and the key.</summary>
/// <param name="path">The file, for messages.</param>
/// <param name="prefix">The object's own key followed by a dot (<c>rope_parameters.</c>), or empty for the top level.</param>
/// <param name="root">The object.</param>
internal sealed class ConfigReader(string path, string prefix, JsonObject root)
{
    public string Path => path;

    public JsonObject Root => root;

    /// <summary>The key as the messages write it: <c>rope_parameters.factor</c>.</summary>
    public string Name(string key) => prefix + key;

    public bool Has(string key) => root[key] is not null;

    public int RequiredInt(string key) => OptionalInt(key) ?? throw Missing(key);

    public double RequiredDouble(string key) => OptionalDouble(key) ?? throw Missing(key);

    public int? OptionalInt(string key) => root[key] is { } n ? Convert(key, () => n.GetValue<int>(), "an integer") : null;

    public double? OptionalDouble(string key) => root[key] is { } n ? Convert(key, () => n.GetValue<double>(), "a number") : null;

    public bool? OptionalBool(string key) => root[key] is { } n ? Convert(key, () => n.GetValue<bool>(), "true or false") : null;

    public string? OptionalString(string key) => root[key] is { } n ? Convert(key, () => n.GetValue<string>(), "a string") : null;

    public IReadOnlyList<int> IntOrList(string key)
    {
        var node = root[key];
        return node switch
        {
            null => [],
            JsonArray array => [.. array.Select(n => n is null ? throw Bad(key, "a list of integers") : Convert(key, () => n.GetValue<int>(), "a list of integers"))],
            _ => [Convert(key, () => node.GetValue<int>(), "an integer or a list of integers")],
        };
    }

    public IReadOnlyList<string> StringList(string key) => root[key] switch
    {
        null => [],
        JsonArray array => [.. array.Select(n => n is null ? throw Bad(key, "a list of strings") : Convert(key, () => n.GetValue<string>(), "a list of strings"))],
        _ => throw Bad(key, "a list of strings"),
    };

    /// <summary>The object under <paramref name="key"/>, or null when it is absent or JSON null.</summary>
    public ConfigReader? Child(string key) => root[key] switch
    {
        null => null,
        JsonObject child => new ConfigReader(path, Name(key) + ".", child),
        _ => throw Bad(key, "an object or null"),
    };

    public InvalidDataException Bad(string key, string expected, Exception? inner = null) =>
        new($"'{path}': '{Name(key)}' must be {expected}; got {root[key]?.ToJsonString() ?? "null"}.", inner);

    private InvalidDataException Missing(string key) => new($"'{path}' has no '{Name(key)}'; it is required.");

    private T Convert<T>(string key, Func<T> read, string expected)
    {
        try
        {
            return read();
        }
        catch (Exception ex) when (ex is InvalidOperationException or FormatException or OverflowException)
        {
            throw Bad(key, expected, ex);
        }
    }
}
