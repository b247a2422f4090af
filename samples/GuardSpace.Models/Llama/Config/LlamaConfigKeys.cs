namespace GuardSpace.Models.Llama.Config;

/// <summary>
/// What <see cref="LlamaConfig.FromFile"/> does with each top-level key of <c>config.json</c>. A key in none of these lists
/// is refused, because an unknown key may change the computation (an attention or MLP variant, a norm, a soft-cap) and
/// running without it would give wrong logits silently.
/// </summary>
public static class LlamaConfigKeys
{
    /// <summary>Keys that set the decoder's shape or computation, and are implemented.</summary>
    public static IReadOnlyList<string> Read { get; } =
    [
        "architectures", "model_type", "vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers",
        "num_attention_heads", "num_key_value_heads", "head_dim", "hidden_act", "rms_norm_eps", "rope_theta",
        "rope_scaling", "rope_parameters", "max_position_embeddings", "tie_word_embeddings", "attention_bias", "mlp_bias",
        "sliding_window", "use_sliding_window", "max_window_layers",
    ];

    /// <summary>Keys that do not change the logits (metadata, generation and runtime settings, initialisation); ignored.</summary>
    public static IReadOnlyList<string> Informational { get; } =
    [
        "_name_or_path", "transformers_version", "torch_dtype", "dtype", "bos_token_id", "eos_token_id", "pad_token_id",
        "use_cache", "initializer_range", "tokenizer_class", "output_attentions", "output_hidden_states", "return_dict",
        "torchscript", "_attn_implementation_autoset", "id2label", "label2id", "is_decoder", "is_encoder_decoder",
        "add_cross_attention", "max_length", "min_length", "do_sample", "temperature", "top_p", "top_k",
        "repetition_penalty", "num_beams", "chunk_size_feed_forward", "prefix", "task_specific_params", "problem_type",
        "is_llama_config",
    ];

    /// <summary>
    /// Keys accepted only with the value that leaves the computation unchanged (<c>pretraining_tp</c> 1, dropouts 0,
    /// <c>partial_rotary_factor</c> 1, <c>layer_types</c> all <c>full_attention</c>, <c>use_mrope</c> and
    /// <c>rope_interleaved</c> false); any other value is refused.
    /// </summary>
    public static IReadOnlyDictionary<string, string> NeutralOnly { get; } = new Dictionary<string, string>(StringComparer.Ordinal)
    {
        ["pretraining_tp"] = "1",
        ["attention_dropout"] = "0",
        ["hidden_dropout"] = "0",
        ["partial_rotary_factor"] = "1",
        ["layer_types"] = "every entry \"full_attention\"",
        ["use_mrope"] = "false",
        ["rope_interleaved"] = "false",
    };

    /// <summary>Keys of other decoders that change the computation and are not implemented, with what they do.</summary>
    public static IReadOnlyDictionary<string, string> Unsupported { get; } = new Dictionary<string, string>(StringComparer.Ordinal)
    {
        ["quantization_config"] = "quantised weights",
        ["attn_logit_softcapping"] = "soft-capped attention scores (Gemma 2)",
        ["final_logit_softcapping"] = "soft-capped logits (Gemma 2)",
        ["query_pre_attn_scalar"] = "a different attention scale (Gemma)",
        ["hidden_activation"] = "a GELU MLP (Gemma)",
        ["use_qk_norm"] = "RMS norms on queries and keys",
        ["qk_layernorm"] = "norms on queries and keys",
        ["no_rope_layers"] = "layers without rotary positions",
        ["attention_chunk_size"] = "chunked attention",
        ["num_experts"] = "a mixture-of-experts MLP",
        ["num_local_experts"] = "a mixture-of-experts MLP",
        ["sliding_window_pattern"] = "interleaved sliding-window layers",
        ["rope_local_base_freq"] = "a second rotary base for local layers",
        ["logits_scaling"] = "scaled logits",
        ["embedding_multiplier"] = "scaled embeddings",
        ["residual_multiplier"] = "scaled residuals",
        ["attention_multiplier"] = "a different attention scale",
    };

    /// <summary>Refuses a key of <paramref name="reader"/> (the top level) that no list above allows, or a neutral-only key with another value.</summary>
    internal static void Check(ConfigReader reader)
    {
        foreach (var (key, _) in reader.Root)
        {
            if (Read.Contains(key) || Informational.Contains(key))
            {
                continue;
            }

            if (NeutralOnly.TryGetValue(key, out var neutral))
            {
                if (!IsNeutral(reader, key))
                {
                    throw new NotSupportedException(
                        $"'{reader.Path}': '{key}' = {reader.Root[key]?.ToJsonString()} changes the computation and is not implemented here " +
                        $"(only {neutral} is). Use a checkpoint without it, or implement it in samples/GuardSpace.Models/Llama.");
                }

                continue;
            }

            var what = Unsupported.TryGetValue(key, out var description) ? $" ({description})" : string.Empty;
            throw new NotSupportedException(
                $"'{reader.Path}': key '{key}'{what} is not implemented by this Llama-family decoder, and an unknown key may change the " +
                "computation, so the file is refused rather than run with wrong logits. If the key is purely informational, remove it " +
                "from config.json (or add it to LlamaConfigKeys.Informational); otherwise implement it in samples/GuardSpace.Models/Llama.");
        }
    }

    private static bool IsNeutral(ConfigReader reader, string key) => key switch
    {
        "layer_types" => reader.StringList(key).All(t => t == "full_attention"),
        "pretraining_tp" => reader.OptionalInt(key) is null or 1,
        "partial_rotary_factor" => reader.OptionalDouble(key) is null or 1.0,
        "use_mrope" or "rope_interleaved" => reader.OptionalBool(key) is null or false,
        _ => reader.OptionalDouble(key) is null or 0.0,
    };
}
