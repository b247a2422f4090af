namespace GuardSpace.Serialization;

/// <summary>File and key names of the two on-disk layouts (docs/adapter-format.md).</summary>
public static class AdapterFiles
{
    /// <summary>GuardSpace's own adapter state (factors, initial factors, projector bases).</summary>
    public const string StateFile = "guardspace_adapter.safetensors";

    /// <summary>GuardSpace's own JSON config.</summary>
    public const string ConfigFile = "guardspace_config.json";

    /// <summary>PEFT's weights file, written by <see cref="GuardedModel.ExportPeft"/>.</summary>
    public const string PeftWeightsFile = "adapter_model.safetensors";

    /// <summary>PEFT's config file.</summary>
    public const string PeftConfigFile = "adapter_config.json";

    /// <summary>The key prefix PEFT's <c>PeftModel</c> writes in front of module paths.</summary>
    public const string PeftKeyPrefix = "base_model.model.";
}
