using GuardSpace.Serialization;
using Spectre.Console;

namespace GuardSpace.Samples.SafeFineTune;

/// <summary>Step 4: the adapter in PEFT's layout (adapter_config.json, adapter_model.safetensors) in --out.</summary>
internal static class ExportAdapter
{
    public static void Run(Session session, Checkpoint checkpoint, GuardedModel guarded)
    {
        var options = session.Options;
        guarded.ExportPeft(options.Out, new PeftExportOptions { BaseModelNameOrPath = options.BaseModel ?? Path.GetFullPath(checkpoint.Directory), TaskType = "CAUSAL_LM" });
        foreach (var file in new[] { AdapterFiles.PeftConfigFile, AdapterFiles.PeftWeightsFile }.Select(f => Path.Combine(options.Out, f)))
        {
            AnsiConsole.MarkupLineInterpolated($"wrote {file} ({new FileInfo(file).Length:N0} bytes)");
        }

        session.Lap("export the PEFT adapter");
    }
}
