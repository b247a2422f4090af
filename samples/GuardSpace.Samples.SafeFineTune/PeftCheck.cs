using System.Text.Json;
using GuardSpace.Models.Llama;
using GuardSpace.Storage;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace GuardSpace.Samples.SafeFineTune;

/// <summary>
/// Applies an exported PEFT adapter the way PEFT does, <c>W += (alpha_l / r_l) B A</c> with the per-layer rank and alpha
/// from <c>rank_pattern</c>/<c>alpha_pattern</c>, to a fresh copy of the ORIGINAL checkpoint, reading the files with
/// nothing from GuardSpace.Core.
/// </summary>
internal static class PeftCheck
{
    public static LlamaForCausalLM LoadMerged(string modelDirectory, string adapterDirectory, ScalarType dtype, Device device)
    {
        var model = LlamaForCausalLM.FromPretrained(modelDirectory, dtype, device);
        using var config = JsonDocument.Parse(File.ReadAllText(Path.Combine(adapterDirectory, "adapter_config.json")));
        var root = config.RootElement;
        var r = root.GetProperty("r").GetInt32();
        var alpha = root.GetProperty("lora_alpha").GetDouble();
        var ranks = root.GetProperty("rank_pattern").EnumerateObject().ToDictionary(p => p.Name, p => p.Value.GetInt32());
        var alphas = root.GetProperty("alpha_pattern").EnumerateObject().ToDictionary(p => p.Name, p => p.Value.GetDouble());
        var modules = model.named_modules().ToDictionary(m => m.name, m => m.module);
        using var reader = SafetensorsReader.Open(Path.Combine(adapterDirectory, "adapter_model.safetensors"));
        using var noGrad = no_grad();
        const string prefix = "base_model.model.";
        foreach (var key in reader.Entries.Keys.Where(k => k.EndsWith(".lora_A.weight", StringComparison.Ordinal)))
        {
            using var scope = NewDisposeScope();
            var name = key[prefix.Length..^".lora_A.weight".Length];
            var scale = alphas.GetValueOrDefault(name, alpha) / ranks.GetValueOrDefault(name, r);
            var a = reader.Read(key).to(ScalarType.Float32, device);
            var b = reader.Read($"{prefix}{name}.lora_B.weight").to(ScalarType.Float32, device);
            var weight = ((Linear)modules[name]).weight!;
            weight.copy_(weight.to_type(ScalarType.Float32) + (b.matmul(a) * scale));
        }

        return model;
    }
}
