using System.Text.Json.Nodes;
using GuardSpace.Models.Llama;
using GuardSpace.Tests.TestUtilities;
using TorchSharp;
using static TorchSharp.torch;

namespace GuardSpace.Tests.Models;

/// <summary>
/// config.json in the current transformers format (<c>rope_parameters</c>) and the older one (top-level <c>rope_theta</c>,
/// <c>rope_scaling</c>) give the reference logits; keys that would change the computation and are not implemented are
/// refused with their name.
/// </summary>
public class LlamaConfigFormatTests
{
    private static readonly long[] Ids = [3, 17, 0, 36, 8, 8, 21, 30, 2, 11, 5, 19];

    [Theory]
    [InlineData(1.0)]
    [InlineData(4.0)]
    public void RopeParametersConfigGivesTheReferenceLogitsAndTheOldFormatsLogits(double linearFactor)
    {
        using var scope = NewDisposeScope();
        var spec = new TinyCheckpoint.Spec { LinearRopeFactor = linearFactor };
        using var checkpoint = TinyCheckpoint.Write(spec, ScalarType.Float32, 1);
        EditConfig(checkpoint.Directory, c =>
        {
            c.Remove("rope_theta");
            c["rope_scaling"] = linearFactor == 1 ? null : new JsonObject { ["type"] = "linear", ["factor"] = linearFactor };
        });
        var oldFormat = Logits(checkpoint.Directory, c => c["rope_theta"] = spec.Theta);

        var newFormat = Logits(checkpoint.Directory, c =>
        {
            c.Remove("rope_scaling");
            c["rope_parameters"] = linearFactor == 1
                ? new JsonObject { ["rope_type"] = "default", ["rope_theta"] = spec.Theta }
                : new JsonObject { ["rope_type"] = "linear", ["factor"] = linearFactor, ["rope_theta"] = spec.Theta };
        });

        var expected = LlamaReference.Logits(checkpoint.Weights, spec, Ids);
        var error = Oracle.RelativeError(newFormat.to_type(ScalarType.Float64), expected);
        Assert.True(error <= 1e-5, $"rope_parameters logits are {error:G3} from the reference");
        Assert.Equal(0.0, (newFormat - oldFormat).abs().max().item<float>());
    }

    [Fact]
    public void Llama3RopeParametersReadAsTheOldRopeScaling()
    {
        using var directory = TempDirectory.Create("guardspace-config-");
        var llama3 = new JsonObject { ["factor"] = 8.0, ["low_freq_factor"] = 1.0, ["high_freq_factor"] = 4.0, ["original_max_position_embeddings"] = 8192 };
        var oldScaling = (JsonObject)llama3.DeepClone();
        oldScaling["rope_type"] = "llama3";
        var parameters = (JsonObject)llama3.DeepClone();
        parameters["rope_type"] = "llama3";
        parameters["rope_theta"] = 500000.0;

        var old = Read(directory, c => (c["rope_theta"], c["rope_scaling"]) = (500000.0, oldScaling));
        var current = Read(directory, c =>
        {
            c.Remove("rope_theta");
            c.Remove("rope_scaling");
            c["rope_parameters"] = parameters;
        });

        Assert.Equal(new RopeScaling(RopeScalingType.Llama3, 8, 1, 4, 8192), current.RopeScaling);
        Assert.Equal(500000.0, current.RopeTheta);
        Assert.Equal(old.ToJson(), current.ToJson());
    }

    [Fact]
    public void InformationalKeysAreIgnored()
    {
        using var directory = TempDirectory.Create("guardspace-config-");
        var config = Read(directory, c =>
        {
            c["transformers_version"] = "5.0.0";
            c["dtype"] = "bfloat16";
            c["use_cache"] = true;
            c["initializer_range"] = 0.02;
            c["pretraining_tp"] = 1;
            c["attention_dropout"] = 0.0;
            c["layer_types"] = new JsonArray("full_attention", "full_attention");
            c["use_mrope"] = false;
            c["is_llama_config"] = true;
        });
        Assert.Equal(500.0, config.RopeTheta);
    }

    public static TheoryData<string, string, string> Refusals => new()
    {
        { """{"rope_parameters": {"rope_type": "yarn", "factor": 4.0, "rope_theta": 500.0}}""", "NotSupportedException", "rope_parameters.rope_type 'yarn'" },
        { """{"rope_parameters": {"rope_type": "dynamic", "factor": 2.0}}""", "NotSupportedException", "'dynamic'" },
        { """{"rope_scaling": {"type": "longrope", "factor": 2.0}}""", "NotSupportedException", "rope_scaling.type 'longrope'" },
        { """{"rope_parameters": {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0, "original_max_position_embeddings": 64, "beta_fast": 32}}""", "NotSupportedException", "'rope_parameters.beta_fast'" },
        { """{"rope_parameters": {"rope_type": "default", "partial_rotary_factor": 0.5}}""", "NotSupportedException", "'rope_parameters.partial_rotary_factor'" },
        { """{"rope_parameters": {"full_attention": {"rope_type": "default"}, "sliding_attention": {"rope_type": "default"}}}""", "NotSupportedException", "'rope_parameters.full_attention'" },
        { """{"rope_parameters": {"rope_type": "default", "rope_theta": 10000.0}}""", "InvalidDataException", "'rope_theta' and 'rope_parameters.rope_theta'" },
        { """{"rope_parameters": {"rope_type": "default"}, "rope_scaling": {"type": "linear", "factor": 2.0}}""", "InvalidDataException", "'rope_parameters' and 'rope_scaling'" },
        { """{"rope_parameters": {"rope_type": "linear", "type": "llama3", "factor": 2.0}}""", "InvalidDataException", "'rope_parameters.rope_type' and 'rope_parameters.type'" },
        { """{"attn_logit_softcapping": 50.0}""", "NotSupportedException", "'attn_logit_softcapping'" },
        { """{"use_qk_norm": true}""", "NotSupportedException", "'use_qk_norm'" },
        { """{"a_switch_from_the_future": true}""", "NotSupportedException", "'a_switch_from_the_future'" },
        { """{"partial_rotary_factor": 0.25}""", "NotSupportedException", "'partial_rotary_factor'" },
        { """{"pretraining_tp": 2}""", "NotSupportedException", "'pretraining_tp'" },
        { """{"layer_types": ["full_attention", "sliding_attention"]}""", "NotSupportedException", "'layer_types'" },
        { """{"hidden_act": "gelu"}""", "NotSupportedException", "hidden_act 'gelu'" },
        { """{"rope_interleaved": true}""", "NotSupportedException", "'rope_interleaved'" },
    };

    [Theory]
    [MemberData(nameof(Refusals))]
    public void ConfigThatWouldChangeTheComputationIsRefusedByKey(string overrides, string exception, string named)
    {
        using var directory = TempDirectory.Create("guardspace-config-");
        var extra = (JsonObject)JsonNode.Parse(overrides)!;
        var error = Assert.ThrowsAny<Exception>(() => Read(directory, c =>
        {
            foreach (var (key, value) in extra)
            {
                c[key] = value?.DeepClone();
            }
        }));
        Assert.Equal(exception, error.GetType().Name);
        Assert.Contains(named, error.Message);
        Assert.Contains(Path.Combine(directory, "config.json"), error.Message);
    }

    private static LlamaConfig Read(string directory, Action<JsonObject> edit)
    {
        TinyCheckpoint.WriteConfig(directory, new TinyCheckpoint.Spec(), ScalarType.Float32);
        EditConfig(directory, edit);
        return LlamaConfig.FromFile(Path.Combine(directory, "config.json"));
    }

    private static Tensor Logits(string directory, Action<JsonObject> edit)
    {
        var path = Path.Combine(directory, "config.json");
        var original = File.ReadAllText(path);
        EditConfig(directory, edit);
        try
        {
            using var model = LlamaForCausalLM.FromPretrained(directory, ScalarType.Float32);
            using var noGrad = no_grad();
            return model.call(tensor(Ids).unsqueeze(0))[0];
        }
        finally
        {
            File.WriteAllText(path, original);
        }
    }

    private static void EditConfig(string directory, Action<JsonObject> edit)
    {
        var path = Path.Combine(directory, "config.json");
        var config = (JsonObject)JsonNode.Parse(File.ReadAllText(path))!;
        edit(config);
        File.WriteAllText(path, config.ToJsonString());
    }
}
