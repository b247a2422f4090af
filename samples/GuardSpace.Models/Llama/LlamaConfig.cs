using System.Text.Json;
using System.Text.Json.Nodes;
using GuardSpace.Models.Llama.Config;

namespace GuardSpace.Models.Llama;

/// <summary>
/// The shape of a Llama-family decoder, with the meaning of Hugging Face's <c>config.json</c> fields. Build one in code
/// (tiny sizes train from scratch on a CPU) or read one with <see cref="FromFile"/>.
/// </summary>
public sealed record LlamaConfig
{
    /// <summary>The architectures this decoder implements (the <c>architectures</c> entry of <c>config.json</c>).</summary>
    public static IReadOnlyList<string> SupportedArchitectures { get; } = ["LlamaForCausalLM", "MistralForCausalLM", "Qwen2ForCausalLM"];

    /// <summary>Hugging Face architecture name written to <c>config.json</c>. Default <c>LlamaForCausalLM</c>.</summary>
    public string Architecture { get; init; } = "LlamaForCausalLM";

    /// <summary>Vocabulary size (<c>vocab_size</c>).</summary>
    public required int VocabSize { get; init; }

    /// <summary>Model width (<c>hidden_size</c>).</summary>
    public required int HiddenSize { get; init; }

    /// <summary>Width of the SwiGLU MLP (<c>intermediate_size</c>).</summary>
    public required int IntermediateSize { get; init; }

    /// <summary>Number of decoder layers (<c>num_hidden_layers</c>).</summary>
    public required int NumHiddenLayers { get; init; }

    /// <summary>Number of query heads (<c>num_attention_heads</c>).</summary>
    public required int NumAttentionHeads { get; init; }

    /// <summary>Number of key/value heads (<c>num_key_value_heads</c>); fewer than the query heads is grouped-query attention. Null: as many as query heads.</summary>
    public int? NumKeyValueHeads { get; init; }

    /// <summary>Width of one head (<c>head_dim</c>). Null: <see cref="HiddenSize"/> / <see cref="NumAttentionHeads"/>.</summary>
    public int? HeadDim { get; init; }

    /// <summary>Epsilon of the RMS norms (<c>rms_norm_eps</c>). Default 1e-6.</summary>
    public double RmsNormEps { get; init; } = 1e-6;

    /// <summary>Base of the rotary frequencies (<c>rope_theta</c>). Default 10000.</summary>
    public double RopeTheta { get; init; } = 10000;

    /// <summary>Rotary frequency scaling (<c>rope_scaling</c>); null for none.</summary>
    public RopeScaling? RopeScaling { get; init; }

    /// <summary>Longest sequence the model was trained for (<c>max_position_embeddings</c>). Default 2048.</summary>
    public int MaxPositionEmbeddings { get; init; } = 2048;

    /// <summary>True when the output head reuses the token embedding (<c>tie_word_embeddings</c>); the model then has no <c>lm_head</c> module.</summary>
    public bool TieWordEmbeddings { get; init; }

    /// <summary>Bias on q_proj, k_proj, v_proj and o_proj (<c>attention_bias</c>).</summary>
    public bool AttentionBias { get; init; }

    /// <summary>Bias on q_proj, k_proj and v_proj only (Qwen2's layout).</summary>
    public bool QkvBias { get; init; }

    /// <summary>Bias on gate_proj, up_proj and down_proj (<c>mlp_bias</c>).</summary>
    public bool MlpBias { get; init; }

    /// <summary>Sliding-window attention span (<c>sliding_window</c> when used); longer inputs are refused because this decoder attends to the whole prefix.</summary>
    public int? SlidingWindow { get; init; }

    /// <summary>Beginning-of-sequence token (<c>bos_token_id</c>).</summary>
    public int? BosTokenId { get; init; }

    /// <summary>End-of-sequence tokens (<c>eos_token_id</c>, a number or a list).</summary>
    public IReadOnlyList<int> EosTokenIds { get; init; } = [];

    /// <summary>Padding token (<c>pad_token_id</c>).</summary>
    public int? PadTokenId { get; init; }

    /// <summary>Weights' dtype as recorded in the file (<c>torch_dtype</c>), for information.</summary>
    public string? TorchDtype { get; init; }

    /// <summary>Key/value heads, resolved.</summary>
    public int KeyValueHeads => NumKeyValueHeads ?? NumAttentionHeads;

    /// <summary>Head width, resolved.</summary>
    public int HeadDimension => HeadDim ?? HiddenSize / NumAttentionHeads;

    /// <summary>Throws <see cref="ArgumentException"/> naming the first inconsistent field.</summary>
    public void Validate()
    {
        Positive(VocabSize, "vocab_size");
        Positive(HiddenSize, "hidden_size");
        Positive(IntermediateSize, "intermediate_size");
        Positive(NumHiddenLayers, "num_hidden_layers");
        Positive(NumAttentionHeads, "num_attention_heads");
        Positive(KeyValueHeads, "num_key_value_heads");
        Positive(HeadDimension, "head_dim");
        if (NumAttentionHeads % KeyValueHeads != 0)
        {
            throw new ArgumentException($"num_attention_heads ({NumAttentionHeads}) must be a multiple of num_key_value_heads ({KeyValueHeads}).");
        }

        if (HeadDim is null && HiddenSize % NumAttentionHeads != 0)
        {
            throw new ArgumentException($"hidden_size ({HiddenSize}) must be a multiple of num_attention_heads ({NumAttentionHeads}) when head_dim is not given.");
        }

        if (HeadDimension % 2 != 0)
        {
            throw new ArgumentException($"head_dim ({HeadDimension}) must be even for rotary positions.");
        }

        if (!(RmsNormEps > 0) || !(RopeTheta > 1))
        {
            throw new ArgumentException($"rms_norm_eps ({RmsNormEps}) must be positive and rope_theta ({RopeTheta}) above 1.");
        }
    }

    /// <summary>
    /// Reads a Hugging Face <c>config.json</c> in the current format (<c>rope_parameters</c>) or the older one (top-level
    /// <c>rope_theta</c> and <c>rope_scaling</c>). Throws <see cref="FileNotFoundException"/> when it is missing,
    /// <see cref="InvalidDataException"/> naming the file and the key for a missing, malformed or contradictory field, and
    /// <see cref="NotSupportedException"/> naming the key for an architecture, activation, rope type or any other key that
    /// would change the computation and is not implemented (see <see cref="LlamaConfigKeys"/> for what is read and ignored).
    /// </summary>
    public static LlamaConfig FromFile(string path) => LlamaConfigFile.Read(path);

    /// <summary>This configuration as a Hugging Face <c>config.json</c> document.</summary>
    public string ToJson()
    {
        var model = new JsonObject
        {
            ["architectures"] = new JsonArray(Architecture),
            ["model_type"] = Architecture switch
            {
                "MistralForCausalLM" => "mistral",
                "Qwen2ForCausalLM" => "qwen2",
                _ => "llama",
            },
            ["vocab_size"] = VocabSize,
            ["hidden_size"] = HiddenSize,
            ["intermediate_size"] = IntermediateSize,
            ["num_hidden_layers"] = NumHiddenLayers,
            ["num_attention_heads"] = NumAttentionHeads,
            ["num_key_value_heads"] = KeyValueHeads,
            ["head_dim"] = HeadDimension,
            ["hidden_act"] = "silu",
            ["rms_norm_eps"] = RmsNormEps,
            ["rope_theta"] = RopeTheta,
            ["rope_scaling"] = RopeScaling?.ToJson(),
            ["max_position_embeddings"] = MaxPositionEmbeddings,
            ["tie_word_embeddings"] = TieWordEmbeddings,
            ["attention_bias"] = AttentionBias,
            ["mlp_bias"] = MlpBias,
            ["sliding_window"] = SlidingWindow,
            ["bos_token_id"] = BosTokenId,
            ["eos_token_id"] = EosTokenIds.Count == 1 ? JsonValue.Create(EosTokenIds[0]) : new JsonArray([.. EosTokenIds.Select(i => (JsonNode?)i)]),
            ["pad_token_id"] = PadTokenId,
            ["torch_dtype"] = TorchDtype,
        };
        if (Architecture == "Qwen2ForCausalLM")
        {
            model["use_sliding_window"] = SlidingWindow is not null;
        }

        return model.ToJsonString(new JsonSerializerOptions { WriteIndented = true });
    }

    private static void Positive(int value, string key)
    {
        if (value <= 0)
        {
            throw new ArgumentException($"{key} must be positive; got {value}.");
        }
    }
}
