using static TorchSharp.torch;

namespace GuardSpace.Internal;

/// <summary>Device comparison: TorchSharp's <see cref="Device"/> has reference equality only, so compare type and index.</summary>
internal static class Devices
{
    public static bool SameAs(this Device a, Device b) => a.type == b.type && NormalisedIndex(a) == NormalisedIndex(b);

    // "cuda" and "cuda:0" name the same device when one GPU is current; CPU indices are always -1 or 0.
    private static int NormalisedIndex(Device d) => d.index < 0 ? 0 : d.index;
}
