using GuardSpace.Models.Llama;

namespace GuardSpace.Models.Export;

/// <summary>
/// The tensors of a Llama-family checkpoint as Hugging Face's modeling code names and shapes them, derived from the
/// config alone: what a merged export must contain, whatever modules an adapter added to the model in memory.
/// </summary>
public static class LlamaTensorNames
{
    /// <summary>Every tensor name of a checkpoint of <paramref name="config"/>, with its shape, in Hugging Face's order.</summary>
    public static IReadOnlyList<(string Name, long[] Shape)> For(LlamaConfig config)
    {
        ArgumentNullException.ThrowIfNull(config);
        var (hidden, heads, kv, d) = ((long)config.HiddenSize, (long)config.NumAttentionHeads, (long)config.KeyValueHeads, (long)config.HeadDimension);
        var names = new List<(string, long[])> { ("model.embed_tokens.weight", [config.VocabSize, hidden]) };
        for (var i = 0; i < config.NumHiddenLayers; i++)
        {
            var p = $"model.layers.{i}.";
            var qkvBias = config.AttentionBias || config.QkvBias;
            Linear(names, p + "self_attn.q_proj", heads * d, hidden, qkvBias);
            Linear(names, p + "self_attn.k_proj", kv * d, hidden, qkvBias);
            Linear(names, p + "self_attn.v_proj", kv * d, hidden, qkvBias);
            Linear(names, p + "self_attn.o_proj", hidden, heads * d, config.AttentionBias);
            Linear(names, p + "mlp.gate_proj", config.IntermediateSize, hidden, config.MlpBias);
            Linear(names, p + "mlp.up_proj", config.IntermediateSize, hidden, config.MlpBias);
            Linear(names, p + "mlp.down_proj", hidden, config.IntermediateSize, config.MlpBias);
            names.Add((p + "input_layernorm.weight", [hidden]));
            names.Add((p + "post_attention_layernorm.weight", [hidden]));
        }

        names.Add(("model.norm.weight", [hidden]));
        if (!config.TieWordEmbeddings)
        {
            names.Add(("lm_head.weight", [config.VocabSize, hidden]));
        }

        return names;
    }

    private static void Linear(List<(string, long[])> names, string module, long outFeatures, long inFeatures, bool bias)
    {
        names.Add((module + ".weight", [outFeatures, inFeatures]));
        if (bias)
        {
            names.Add((module + ".bias", [outFeatures]));
        }
    }
}
