using System.IO.Hashing;
using static TorchSharp.torch;

namespace GuardSpace.Storage;

/// <summary>
/// The checksum of a tensor's raw little-endian bytes as a safetensors file stores them: XXH3 128-bit, written as
/// <c>xxh128:</c> plus 32 hex digits. It detects corruption (flipped bytes, truncation, mixed-up files); it is no
/// signature, since whoever can rewrite the file can rewrite the config beside it. XXH3 runs near memory speed, where
/// SHA-256 costs about a fifth of a save (docs/benchmarks.md).
/// </summary>
internal static class TensorChecksum
{
    public const string Prefix = "xxh128:";

    // Tensor.bytes exposes at most int.MaxValue bytes at a time.
    private const long ChunkBytes = 1L << 30;

    /// <summary>The checksum of <paramref name="tensor"/>, which must be contiguous and on the CPU.</summary>
    public static string Compute(Tensor tensor)
    {
        var hash = new XxHash128();
        Append(hash, tensor);
        return Prefix + Convert.ToHexStringLower(hash.GetCurrentHash());
    }

    /// <summary>Feeds the tensor's bytes to <paramref name="hash"/>, in chunks the span API can address.</summary>
    public static void Append(NonCryptographicHashAlgorithm hash, Tensor tensor)
    {
        var total = tensor.NumberOfElements * tensor.ElementSize;
        if (total <= ChunkBytes)
        {
            if (total > 0)
            {
                hash.Append(tensor.bytes);
            }

            return;
        }

        using var scope = NewDisposeScope();
        var flat = tensor.view(-1);
        var perChunk = ChunkBytes / tensor.ElementSize;
        for (long start = 0; start < flat.shape[0]; start += perChunk)
        {
            using var chunk = flat.narrow(0, start, Math.Min(perChunk, flat.shape[0] - start));
            hash.Append(chunk.bytes);
        }
    }
}
