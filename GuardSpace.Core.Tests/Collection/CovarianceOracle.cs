using MathNet.Numerics.LinearAlgebra;
using TorchSharp;
using static TorchSharp.torch;

namespace GuardSpace.Tests.Collection;

/// <summary>An independent float64 reference for sum x x^T, written with MathNet.Numerics and plain loops.</summary>
internal static class CovarianceOracle
{
    /// <summary>The token rows of each sample of a [batch, seq, n] tensor, keeping only tokens where <paramref name="mask"/> is true.</summary>
    public static List<double[][]> Samples(Tensor x3, bool[,]? mask = null)
    {
        using var cpu = x3.detach().to_type(ScalarType.Float64).cpu().contiguous();
        var data = cpu.data<double>().ToArray();
        int b = (int)cpu.shape[0], s = (int)cpu.shape[1], n = (int)cpu.shape[2];
        var samples = new List<double[][]>();
        for (var i = 0; i < b; i++)
        {
            var rows = new List<double[]>();
            for (var j = 0; j < s; j++)
            {
                if (mask is null || mask[i, j])
                {
                    rows.Add(data.AsSpan(((i * s) + j) * n, n).ToArray());
                }
            }

            samples.Add([.. rows]);
        }

        return samples;
    }

    public static Matrix<double> Sum(IEnumerable<double[][]> samples, bool perSampleMaxAbs, int n)
    {
        var c = Matrix<double>.Build.Dense(n, n);
        foreach (var sample in samples)
        {
            if (sample.Length == 0)
            {
                continue;
            }

            var x = Matrix<double>.Build.DenseOfRowArrays(sample);
            if (perSampleMaxAbs)
            {
                var max = x.Enumerate().Max(Math.Abs);
                if (max > 0)
                {
                    x = x / max;
                }
            }

            c += x.TransposeThisAndMultiply(x);
        }

        return c;
    }

    public static Matrix<double> ToMatrix(Tensor t)
    {
        using var cpu = t.detach().to_type(ScalarType.Float64).cpu().contiguous();
        var data = cpu.data<double>().ToArray();
        int rows = (int)cpu.shape[0], cols = (int)cpu.shape[1];
        return Matrix<double>.Build.Dense(rows, cols, (i, j) => data[(i * cols) + j]);
    }

    public static double RelativeError(Tensor actual, Matrix<double> expected) =>
        (ToMatrix(actual) - expected).FrobeniusNorm() / expected.FrobeniusNorm();

    public static bool BitEqual(Tensor a, Tensor b)
    {
        using var ca = a.cpu().contiguous();
        using var cb = b.cpu().contiguous();
        return a.dtype == b.dtype && a.shape.SequenceEqual(b.shape) && ca.bytes.SequenceEqual(cb.bytes);
    }
}
