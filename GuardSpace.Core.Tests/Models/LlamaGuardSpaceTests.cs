using System.Text.Json;
using GuardSpace.Adapters;
using GuardSpace.Models.Llama;
using GuardSpace.Serialization;
using GuardSpace.Storage;
using GuardSpace.Tests.TestUtilities;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace GuardSpace.Tests.Models;

/// <summary>GuardSpace on the Llama-family decoder loaded from a Hugging Face folder: GQA sharing, invariance and the PEFT export.</summary>
[Trait("Category", "Invariant")]
public class LlamaGuardSpaceTests
{
    private static readonly string[] Modules = ["self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj", "mlp.gate_proj", "mlp.up_proj", "mlp.down_proj"];

    [Fact]
    public void GroupedQueryProjectionsShareOneProjectorWithQueryAndKeepTheHarmfulOutputs()
    {
        using var scope = NewDisposeScope();
        using var checkpoint = TinyCheckpoint.Write(new TinyCheckpoint.Spec(), ScalarType.Float32, 2);
        using var model = LlamaForCausalLM.FromPretrained(checkpoint.Directory, ScalarType.Float64);
        model.eval();
        var harmful = Tokens(2, 6, 11);      // 12 tokens against width 32: every layer keeps a null space
        var safety = Tokens(4, 6, 12);
        using var guarded = Attach(model, harmful, safety);

        for (var i = 0; i < checkpoint.Shape.Layers; i++)
        {
            var p = $"model.layers.{i}.";
            var (q, k, v) = (guarded.Adapters[p + "self_attn.q_proj"], guarded.Adapters[p + "self_attn.k_proj"], guarded.Adapters[p + "self_attn.v_proj"]);
            Assert.Equal(16, k.OutFeatures);                   // 2 kv heads x 8: narrower than q_proj's 32
            Assert.Equal(32, q.OutFeatures);
            Assert.NotNull(q.Projector);
            Assert.Same(q.Projector, k.Projector);
            Assert.Same(q.Projector, v.Projector);
            Assert.Same(guarded.Adapters[p + "mlp.gate_proj"].Projector, guarded.Adapters[p + "mlp.up_proj"].Projector);
            Assert.NotSame(q.Projector, guarded.Adapters[p + "self_attn.o_proj"].Projector);
            var groups = guarded.Layers.Where(l => l.Name.StartsWith(p + "self_attn.", StringComparison.Ordinal) && !l.Name.EndsWith("o_proj", StringComparison.Ordinal)).Select(l => l.CovarianceGroup).Distinct().ToList();
            Assert.Single(groups);
            Assert.All(new[] { q, k, v }, a => Assert.False(a.IsFrozen));
        }

        // The guarded k/v layers' outputs on the harmful activations, captured before training.
        var captured = new Dictionary<string, (Tensor Input, Tensor Output)>(StringComparer.Ordinal);
        var removers = guarded.Adapters.Where(kv => kv.Key.EndsWith("k_proj", StringComparison.Ordinal) || kv.Key.EndsWith("v_proj", StringComparison.Ordinal))
            .Select(kv => kv.Value.register_forward_hook((_, input, output) =>
            {
                captured[kv.Key] = (input.detach().clone().DetachFromDisposeScope(), output.detach().clone().DetachFromDisposeScope());
                return null!;
            })).ToList();
        Tensor harmfulBefore;
        using (no_grad())
        {
            harmfulBefore = model.call(harmful);
        }

        removers.ForEach(r => r.remove());
        var probe = Tokens(3, 7, 13);
        var probeBefore = model.call(probe).detach();
        var kBefore = guarded.Adapters["model.layers.0.self_attn.k_proj"].LoraB.detach().clone();

        using (var optimizer = guarded.WrapOptimizer(optim.Adam(guarded.TrainableParameters(), 1e-2)))
        {
            for (var step = 0; step < 15; step++)
            {
                TrainStep(model, optimizer, checkpoint.Shape.Vocab, step);
            }
        }

        using (no_grad())
        {
            Assert.Equal(4, captured.Count);
            foreach (var (name, (input, output)) in captured)
            {
                var now = guarded.Adapters[name].call(input);
                Assert.True(Oracle.RelativeError(now.reshape(-1, now.shape[^1]), output.reshape(-1, output.shape[^1])) <= 1e-8, $"{name}: {Oracle.RelativeError(now.reshape(-1, now.shape[^1]), output.reshape(-1, output.shape[^1])):G3}");
            }

            var harmfulAfter = model.call(harmful);
            Assert.True(Oracle.RelativeError(harmfulAfter.reshape(-1, checkpoint.Shape.Vocab), harmfulBefore.reshape(-1, checkpoint.Shape.Vocab)) <= 1e-8);
            Assert.True(Oracle.RelativeError(model.call(probe).reshape(-1, checkpoint.Shape.Vocab), probeBefore.reshape(-1, checkpoint.Shape.Vocab)) > 1e-4, "training changed the model elsewhere");
            Assert.True((guarded.Adapters["model.layers.0.self_attn.k_proj"].LoraB - kBefore).abs().max().item<double>() > 1e-6, "k_proj trained");
        }

        foreach (var (input, output) in captured.Values)
        {
            input.Dispose();
            output.Dispose();
        }
    }

    [Fact]
    public void PeftExportHasPeftsLlamaLayoutAndReproducesTheFineTuneFromTheOriginalCheckpoint()
    {
        using var scope = NewDisposeScope();
        var spec = new TinyCheckpoint.Spec { Intermediate = 96 };
        using var checkpoint = TinyCheckpoint.Write(spec, ScalarType.Float32, 2);
        using var model = LlamaForCausalLM.FromPretrained(checkpoint.Directory, ScalarType.Float64);
        model.eval();

        // 48 harmful tokens: more than the width-32 inputs' rank in most of those layers (empty null space: frozen),
        // fewer than down_proj's 96 (kept, trains). So the layers' exported ranks differ.
        using var guarded = Attach(model, Tokens(6, 8, 21), Tokens(4, 6, 22));
        Assert.Contains(guarded.Adapters.Values, a => a.IsFrozen);
        Assert.Contains(guarded.Adapters.Values, a => !a.IsFrozen);
        using (var optimizer = guarded.WrapOptimizer(optim.Adam(guarded.TrainableParameters(), 1e-2)))
        {
            for (var step = 0; step < 15; step++)
            {
                TrainStep(model, optimizer, spec.Vocab, step);
            }
        }

        var probe = Tokens(3, 7, 23);
        Tensor fineTuned;
        using (no_grad())
        {
            fineTuned = model.call(probe).reshape(-1, spec.Vocab);
        }

        var directory = Directory.CreateTempSubdirectory("guardspace-peft-llama-").FullName;
        try
        {
            guarded.ExportPeft(directory, new PeftExportOptions { BaseModelNameOrPath = checkpoint.Directory, TaskType = "CAUSAL_LM" });
            var (tensors, metadata) = SafetensorsReader.ReadAll(Path.Combine(directory, "adapter_model.safetensors"));
            var config = JsonDocument.Parse(File.ReadAllText(Path.Combine(directory, "adapter_config.json"))).RootElement;
            Assert.Equal("pt", metadata["format"]);

            // Keys: exactly PEFT's for a Llama causal LM, two per targeted Linear.
            var layerNames = Enumerable.Range(0, spec.Layers).SelectMany(i => Modules.Select(m => $"model.layers.{i}.{m}")).ToList();
            var expectedKeys = layerNames.SelectMany(n => new[] { $"base_model.model.{n}.lora_A.weight", $"base_model.model.{n}.lora_B.weight" }).Order(StringComparer.Ordinal);
            Assert.Equal(expectedKeys, tensors.Keys.Order(StringComparer.Ordinal));

            // Config: PEFT's LoraConfig fields.
            Assert.Equal("LORA", config.GetProperty("peft_type").GetString());
            Assert.Equal(checkpoint.Directory, config.GetProperty("base_model_name_or_path").GetString());
            Assert.Equal("CAUSAL_LM", config.GetProperty("task_type").GetString());
            Assert.False(config.GetProperty("use_rslora").GetBoolean());
            Assert.Equal(["down_proj", "gate_proj", "k_proj", "o_proj", "q_proj", "up_proj", "v_proj"], config.GetProperty("target_modules").EnumerateArray().Select(e => e.GetString()!).ToArray());
            var r = config.GetProperty("r").GetInt32();
            var alpha = config.GetProperty("lora_alpha").GetDouble();
            var rankPattern = config.GetProperty("rank_pattern").EnumerateObject().ToDictionary(p => p.Name, p => p.Value.GetInt32());
            var alphaPattern = config.GetProperty("alpha_pattern").EnumerateObject().ToDictionary(p => p.Name, p => p.Value.GetDouble());
            Assert.NotEmpty(rankPattern);
            // Each key resolves to its layer alone under both of PEFT's matching rules (0.6-0.14 and 0.15+).
            Assert.All(rankPattern, kv => Assert.Single(layerNames, n => PeftRules.Resolve(rankPattern.Keys, n, PeftRules.Old) == kv.Key));
            Assert.All(rankPattern, kv => Assert.Single(layerNames, n => PeftRules.Resolve(rankPattern.Keys, n, PeftRules.New) == kv.Key));
            Assert.All(rankPattern, kv => Assert.NotEqual(r, kv.Value));
            Assert.Equal(rankPattern.Keys.Order(StringComparer.Ordinal), alphaPattern.Keys.Order(StringComparer.Ordinal));

            // Apply W + (alpha_l / r_l) B A to the ORIGINAL checkpoint, with PEFT's per-layer r and alpha.
            using var original = LlamaForCausalLM.FromPretrained(checkpoint.Directory, ScalarType.Float64);
            var modules = original.named_modules().ToDictionary(m => m.name, m => m.module, StringComparer.Ordinal);
            var ranks = new HashSet<int>();
            using (no_grad())
            {
                foreach (var name in layerNames)
                {
                    var rankKey = PeftRules.Resolve(rankPattern.Keys, name, PeftRules.Old);
                    Assert.Equal(rankKey, PeftRules.Resolve(rankPattern.Keys, name, PeftRules.New));
                    var rl = rankPattern.GetValueOrDefault(rankKey, r);
                    var alphaL = alphaPattern.GetValueOrDefault(PeftRules.Resolve(alphaPattern.Keys, name, PeftRules.New), alpha);
                    var linear = (Linear)modules[name];
                    var a = tensors[$"base_model.model.{name}.lora_A.weight"];
                    var b = tensors[$"base_model.model.{name}.lora_B.weight"];
                    Assert.Equal([rl, linear.in_features], a.shape);
                    Assert.Equal([linear.out_features, rl], b.shape);
                    Assert.Equal(guarded.Adapters[name].IsFrozen ? 4 : 8, rl);   // frozen: zero delta at r; trained: [B, -B0] at 2r
                    ranks.Add(rl);
                    linear.weight!.add_(b.to_type(ScalarType.Float64).matmul(a.to_type(ScalarType.Float64)) * (alphaL / rl));
                }

                var reproduced = original.call(probe).reshape(-1, spec.Vocab);
                Assert.True(Oracle.RelativeError(reproduced, fineTuned) <= 1e-10, $"{Oracle.RelativeError(reproduced, fineTuned):G3}");
                using var untouched = LlamaForCausalLM.FromPretrained(checkpoint.Directory, ScalarType.Float64);
                Assert.True(Oracle.RelativeError(untouched.call(probe).reshape(-1, spec.Vocab), fineTuned) > 1e-4, "the fine-tune changed the logits");
            }

            Assert.Equal(2, ranks.Count);
            foreach (var t in tensors.Values)
            {
                t.Dispose();
            }
        }
        finally
        {
            Directory.Delete(directory, recursive: true);
        }
    }

    /// <summary>The official preset: its exact null spaces (and frozen empty layers) are what these tests check.</summary>
    internal static GuardedModel Attach(LlamaForCausalLM model, Tensor harmful, Tensor safety)
    {
        var options = GuardedLoraOptions.Official();
        options.Rank = 4;
        return GuardedModel.Attach(model, options, new CalibrationData
        {
            RunSafetyPrompts = _ => model.call(safety).Dispose(),
            RunHarmfulPrompts = _ => model.call(harmful).Dispose(),
        });
    }

    private static Tensor Tokens(int batch, int seq, int seed) =>
        randint(0, 37, [batch, seq], dtype: ScalarType.Int64, generator: new Generator((ulong)seed));

    private static void TrainStep(LlamaForCausalLM model, optim.Optimizer optimizer, int vocab, int step)
    {
        using var scope = NewDisposeScope();
        var (x, y) = (Tokens(8, 6, 100 + step), Tokens(8, 6, 500 + step));
        optimizer.zero_grad();
        functional.cross_entropy(model.call(x).reshape(-1, vocab), y.reshape(-1)).backward();
        optimizer.step();
    }
}
