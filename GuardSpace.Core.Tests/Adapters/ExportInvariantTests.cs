using GuardSpace.Adapters;
using GuardSpace.Serialization;
using GuardSpace.Storage;
using GuardSpace.Tests.TestUtilities;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace GuardSpace.Tests.Adapters;

/// <summary>Invariant 8: the exported plain-LoRA delta reproduces the fine-tuned model from the ORIGINAL weights.</summary>
[Trait("Category", "Invariant")]
public class ExportInvariantTests
{
    [Theory]
    [InlineData(InitializationMethod.GuardSpace)]
    [InlineData(InitializationMethod.Lora)]
    public void ExportedDeltaReproducesTheFineTunedOutputsFromTheOriginalModel(InitializationMethod method)
    {
        using var scope = NewDisposeScope();
        var model = new TinyTransformer();
        var original = TinyTransformer.Snapshot(model);
        using var guarded = GuardedModelInvariantTests.AttachGuardSpace(model, method);
        using var optimizer = guarded.WrapOptimizer(optim.Adam(guarded.TrainableParameters(), 1e-2));
        for (var step = 0; step < 20; step++)
        {
            GuardedModelInvariantTests.TrainStep(model, optimizer, step);
        }

        var probe = TinyTransformer.Tokens(4, 6, 41);
        var fineTuned = model.call(probe).detach().reshape(-1, TinyTransformer.Vocab);
        using var directory = TempDirectory.Create("guardspace-export-");
        guarded.ExportPeft(directory, new PeftExportOptions { BaseModelNameOrPath = "org/tiny-transformer", TaskType = "CAUSAL_LM" });

        var (tensors, metadata) = SafetensorsReader.ReadAll(Path.Combine(directory, AdapterFiles.PeftWeightsFile));
        Assert.Equal("pt", metadata["format"]);
        var config = System.Text.Json.JsonDocument.Parse(File.ReadAllText(Path.Combine(directory, AdapterFiles.PeftConfigFile))).RootElement;
        Assert.Equal("LORA", config.GetProperty("peft_type").GetString());
        var r = config.GetProperty("r").GetInt32();
        Assert.Equal(method == InitializationMethod.GuardSpace ? 8 : 4, r);
        Assert.Equal(r, config.GetProperty("lora_alpha").GetInt32());
        Assert.Empty(config.GetProperty("rank_pattern").EnumerateObject()); // every layer trained: one rank
        Assert.Empty(config.GetProperty("alpha_pattern").EnumerateObject());
        Assert.Equal("org/tiny-transformer", config.GetProperty("base_model_name_or_path").GetString());
        Assert.Equal("CAUSAL_LM", config.GetProperty("task_type").GetString());
        Assert.Equal(["down_proj", "k_proj", "o_proj", "q_proj", "up_proj", "v_proj"], config.GetProperty("target_modules").EnumerateArray().Select(e => e.GetString()!).ToArray());

        // Apply W + B_exp A_exp to a fresh model holding the ORIGINAL weights.
        var fresh = new TinyTransformer();
        using (no_grad())
        {
            foreach (var (name, parameter) in fresh.named_parameters())
            {
                parameter.copy_(original[name]);
            }

            foreach (var (name, module) in fresh.named_modules())
            {
                if (module is Linear linear && guarded.Adapters.ContainsKey(name))
                {
                    var a = tensors[$"base_model.model.{name}.lora_A.weight"];
                    var b = tensors[$"base_model.model.{name}.lora_B.weight"];
                    Assert.Equal([r, linear.in_features], a.shape);
                    Assert.Equal([linear.out_features, r], b.shape);
                    linear.weight!.add_(b.matmul(a)); // PEFT's scaling lora_alpha / r is 1
                }
            }
        }

        var reproduced = fresh.call(probe).detach().reshape(-1, TinyTransformer.Vocab);
        Assert.True(Oracle.RelativeError(reproduced, fineTuned) <= 1e-10, $"{method}: {Oracle.RelativeError(reproduced, fineTuned):G3}");
        Assert.True(Oracle.RelativeError(reproduced, new TinyTransformer().call(probe).detach().reshape(-1, TinyTransformer.Vocab)) > 1e-4, "the delta is not trivially zero");
    }
}
