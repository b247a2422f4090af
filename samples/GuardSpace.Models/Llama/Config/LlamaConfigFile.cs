using System.Text.Json;
using System.Text.Json.Nodes;
using GuardSpace.Models.Internal;

namespace GuardSpace.Models.Llama.Config;

/// <summary>Reads a Hugging Face <c>config.json</c> into a <see cref="LlamaConfig"/> (see <see cref="LlamaConfig.FromFile"/>).</summary>
internal static class LlamaConfigFile
{
    public static LlamaConfig Read(string path)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(path);
        if (!File.Exists(path))
        {
            throw new FileNotFoundException($"'{path}' is missing: a Hugging Face model folder holds config.json next to its *.safetensors weights.", path);
        }

        var root = JsonFiles.ReadObject(path);

        var reader = new ConfigReader(path, string.Empty, root);
        var architecture = Architecture(reader);
        LlamaConfigKeys.Check(reader);
        var hiddenAct = reader.OptionalString("hidden_act") ?? "silu";
        if (hiddenAct != "silu")
        {
            throw new NotSupportedException($"'{path}': hidden_act '{hiddenAct}' is not supported; this decoder implements the SwiGLU MLP ('silu').");
        }

        var isQwen2 = architecture == "Qwen2ForCausalLM";
        var slidingWindow = reader.OptionalInt("sliding_window");
        if (isQwen2 && reader.OptionalBool("use_sliding_window") != true)
        {
            slidingWindow = null; // Qwen2 records a window it does not use unless use_sliding_window is set.
        }

        var (theta, scaling) = RopeSettingsReader.Read(reader);
        var config = new LlamaConfig
        {
            Architecture = architecture,
            VocabSize = reader.RequiredInt("vocab_size"),
            HiddenSize = reader.RequiredInt("hidden_size"),
            IntermediateSize = reader.RequiredInt("intermediate_size"),
            NumHiddenLayers = reader.RequiredInt("num_hidden_layers"),
            NumAttentionHeads = reader.RequiredInt("num_attention_heads"),
            NumKeyValueHeads = reader.OptionalInt("num_key_value_heads"),
            HeadDim = reader.OptionalInt("head_dim"),
            RmsNormEps = reader.OptionalDouble("rms_norm_eps") ?? 1e-6,
            RopeTheta = theta,
            RopeScaling = scaling,
            MaxPositionEmbeddings = reader.OptionalInt("max_position_embeddings") ?? 2048,
            TieWordEmbeddings = reader.OptionalBool("tie_word_embeddings") ?? false,
            AttentionBias = !isQwen2 && (reader.OptionalBool("attention_bias") ?? false),
            QkvBias = isQwen2,
            MlpBias = reader.OptionalBool("mlp_bias") ?? false,
            SlidingWindow = slidingWindow,
            BosTokenId = reader.OptionalInt("bos_token_id"),
            EosTokenIds = reader.IntOrList("eos_token_id"),
            PadTokenId = reader.OptionalInt("pad_token_id"),
            TorchDtype = reader.OptionalString("torch_dtype") ?? reader.OptionalString("dtype"),
        };

        try
        {
            config.Validate();
        }
        catch (ArgumentException ex)
        {
            throw new InvalidDataException($"'{path}': {ex.Message}", ex);
        }

        return config;
    }

    private static string Architecture(ConfigReader reader)
    {
        var names = reader.Has("architectures") ? reader.StringList("architectures").ToList() : [];
        var supported = LlamaConfig.SupportedArchitectures;
        if (names.Count == 0)
        {
            var modelType = reader.OptionalString("model_type");
            names.Add(modelType switch
            {
                "llama" => "LlamaForCausalLM",
                "mistral" => "MistralForCausalLM",
                "qwen2" => "Qwen2ForCausalLM",
                _ => throw new NotSupportedException(
                    $"'{reader.Path}' names no architectures and model_type '{modelType}'; supported: {string.Join(", ", supported)}."),
            });
        }

        return names.FirstOrDefault(supported.Contains) ?? throw new NotSupportedException(
            $"'{reader.Path}': architectures [{string.Join(", ", names)}] is not supported; this decoder implements {string.Join(", ", supported)}. " +
            "Write a TorchSharp module for your architecture following samples/GuardSpace.Models/Llama.");
    }
}
