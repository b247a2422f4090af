namespace GuardSpace.Serialization;

/// <summary>Options of <see cref="GuardedModel.ExportPeft"/>: the fields of <c>adapter_config.json</c> that only the caller knows.</summary>
public sealed class PeftExportOptions
{
    /// <summary>
    /// <c>base_model_name_or_path</c>: the Hugging Face model id or local folder of the ORIGINAL model the adapter applies
    /// to, for example <c>meta-llama/Llama-3.2-1B</c>. PEFT's <c>AutoPeftModel*</c> loaders read it. Default null.
    /// </summary>
    public string? BaseModelNameOrPath { get; init; }

    /// <summary><c>task_type</c>, for example <c>CAUSAL_LM</c> for a decoder LM. Default null (PEFT then builds a plain <c>PeftModel</c>).</summary>
    public string? TaskType { get; init; }
}
