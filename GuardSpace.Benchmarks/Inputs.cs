using TorchSharp;
using static TorchSharp.torch;

namespace GuardSpace.Benchmarks;

/// <summary>
/// Seeded synthetic inputs for one layer: weight W (m x n), safety covariance C_s = X_s^T X_s from more tokens than
/// the width (full rank), harmful covariance C_h = X_h^T X_h from fewer tokens than the width (so its null space has
/// dimension n - tokens). Activations are anisotropic: X = Z diag(s) M with Z Gaussian, s decaying geometrically
/// from 1 to 0.05 (energy in few directions, as in real LLM activations), and M = I + 0.3 G / sqrt(n) a
/// well-conditioned Gaussian mixing so that the principal directions are not the coordinate axes.
/// </summary>
public static class Inputs
{
    /// <summary>The mixing diag(s) M (n x n, float32, CPU) shared by every activation of width n.</summary>
    public static Tensor Mixing(long n, long seed = 7)
    {
        using var scope = NewDisposeScope();
        var scales = exp(linspace(0, Math.Log(0.05), n, dtype: ScalarType.Float32));
        var m = eye(n, dtype: ScalarType.Float32) + randn(n, n, dtype: ScalarType.Float32, generator: BenchEnv.Seeded(seed)) * (0.3 / Math.Sqrt(n));
        return (scales.unsqueeze(1) * m).MoveToOuterDisposeScope();
    }

    /// <summary>Activations (tokens x n), built on the CPU in float32 from <paramref name="seed"/>.</summary>
    public static Tensor Activations(long tokens, Tensor mixing, long seed)
    {
        using var scope = NewDisposeScope();
        var z = randn(tokens, mixing.shape[0], dtype: ScalarType.Float32, generator: BenchEnv.Seeded(seed));
        return z.mm(mixing).MoveToOuterDisposeScope();
    }

    /// <summary>Covariance X^T X (n x n) of <paramref name="tokens"/> anisotropic activations, float32, on <paramref name="device"/>.</summary>
    public static Tensor Covariance(long tokens, long n, long seed, Device device)
    {
        using var scope = NewDisposeScope();
        // Accumulate in chunks so that 10k+ tokens at width 11008 stay within memory.
        var mixing = Mixing(n);
        var c = zeros(n, n, dtype: ScalarType.Float64);
        const long chunk = 2048;
        for (long start = 0, i = 0; start < tokens; start += chunk, i++)
        {
            var x = Activations(Math.Min(chunk, tokens - start), mixing, seed * 1000 + i).to_type(ScalarType.Float64);
            c.addmm_(x.T, x, beta: 1, alpha: 1);
        }

        c = (c + c.T) * 0.5;
        return c.to(ScalarType.Float32, device).MoveToOuterDisposeScope();
    }

    /// <summary>Random weight (m x n) with entries N(0, 1/n), float32.</summary>
    public static Tensor Weight(long m, long n, long seed, Device device)
    {
        using var scope = NewDisposeScope();
        var w = randn(m, n, dtype: ScalarType.Float32, generator: BenchEnv.Seeded(seed)) / Math.Sqrt(n);
        return w.to(device).MoveToOuterDisposeScope();
    }

    /// <summary>Token count of the harmful calibration for a layer of width n in the benchmarks: n / 2 (null space of dimension n / 2).</summary>
    public static long HarmfulTokens(long n) => n / 2;

    /// <summary>Token count of the safety calibration: 2 n (full rank).</summary>
    public static long SafetyTokens(long n) => 2 * n;
}
