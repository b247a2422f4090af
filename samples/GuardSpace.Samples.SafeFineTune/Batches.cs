using GuardSpace.Models.Data;
using static TorchSharp.torch;

namespace GuardSpace.Samples.SafeFineTune;

/// <summary>Tokenized, right-padded batches: ids [b, t], attention mask [b, t] (1 = real token) and, for training, labels.</summary>
internal static class Batches
{
    /// <summary>The label of a position that does not count in the loss.</summary>
    public const long Ignore = -100;

    /// <summary>Prompts as calibration batches (<see cref="PromptEncoding.Prompt"/>, truncated to <paramref name="maxLength"/>).</summary>
    public static List<long[][]> Prompts(PromptEncoding encoding, IReadOnlyList<PromptExample> prompts, int batch, int maxLength) =>
        [.. prompts.Select(p => encoding.Prompt(p).Take(maxLength).Select(i => (long)i).ToArray()).Chunk(batch)];

    /// <summary>
    /// A training sequence (<see cref="PromptEncoding.Example"/>: raw BOS + prompt + "\n" + response + EOS, or the rendered
    /// conversation) with the loss on the response only; a line without a response is learned whole. Truncated to
    /// <paramref name="maxLength"/>.
    /// </summary>
    public static (long[] Ids, long[] Labels) Example(PromptEncoding encoding, PromptExample example, int maxLength)
    {
        var (prompt, response) = encoding.Example(example);
        var ids = prompt.Concat(response).Take(maxLength).Select(i => (long)i).ToArray();
        var learnFrom = example.Response is null ? 1 : prompt.Count;
        var labels = ids.Select((id, i) => i >= learnFrom ? id : Ignore).ToArray();
        return (ids, labels);
    }

    /// <summary>Pads <paramref name="rows"/> on the right with <paramref name="pad"/>; the mask marks the real tokens.</summary>
    public static (Tensor Ids, Tensor Mask) Pad(IReadOnlyList<long[]> rows, long pad, Device device)
    {
        var t = rows.Max(r => r.Length);
        var ids = new long[rows.Count * t];
        var mask = new long[rows.Count * t];
        for (var b = 0; b < rows.Count; b++)
        {
            for (var i = 0; i < t; i++)
            {
                var real = i < rows[b].Length;
                ids[(b * t) + i] = real ? rows[b][i] : pad;
                mask[(b * t) + i] = real ? 1 : 0;
            }
        }

        return (tensor(ids, [rows.Count, t], device: device), tensor(mask, [rows.Count, t], device: device));
    }
}
