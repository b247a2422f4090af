namespace GuardSpace.Serialization;

/// <summary>
/// PEFT's <c>adapter_config.json</c> for a plain LoRA, as <see cref="PeftExporter"/> writes it (snake_case names through
/// <see cref="AdapterConfig.Json"/>). Every layer's alpha equals its rank, so PEFT's scaling <c>lora_alpha / r</c> is 1.
/// </summary>
internal sealed record PeftAdapterConfig
{
    public string PeftType { get; init; } = "LORA";

    public required int R { get; init; }

    public required int LoraAlpha { get; init; }

    /// <summary>Ranks of the layers whose rank is not <see cref="R"/>, keyed as <see cref="PeftPatternKeys"/> chooses.</summary>
    public required IReadOnlyDictionary<string, int> RankPattern { get; init; }

    /// <summary>Alphas of the same layers (equal to their ranks).</summary>
    public required IReadOnlyDictionary<string, int> AlphaPattern { get; init; }

    public required IReadOnlyList<string> TargetModules { get; init; }

    public double LoraDropout { get; init; }

    public string Bias { get; init; } = "none";

    public bool FanInFanOut { get; init; }

    public bool InitLoraWeights { get; init; } = true;

    public bool UseRslora { get; init; }

    public bool UseDora { get; init; }

    public bool InferenceMode { get; init; } = true;

    public IReadOnlyList<string>? ModulesToSave { get; init; }

    public string? BaseModelNameOrPath { get; init; }

    public string? TaskType { get; init; }

    /// <summary>What GuardSpace made the delta from (PEFT ignores unknown keys).</summary>
    public required PeftGuardSpaceInfo Guardspace { get; init; }
}

/// <summary>The <c>guardspace</c> block of an exported PEFT config.</summary>
/// <param name="Version">The library version.</param>
/// <param name="Method">The initialisation method.</param>
/// <param name="Rank">The adapter rank r.</param>
/// <param name="Scale">The adapter scale s.</param>
/// <param name="Delta">How the exported factors relate to the fine-tune.</param>
internal sealed record PeftGuardSpaceInfo(string Version, string Method, int Rank, double Scale, string Delta);
