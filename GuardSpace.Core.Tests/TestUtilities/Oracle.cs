using MathNet.Numerics.LinearAlgebra;
using TorchSharp;
using static TorchSharp.torch;

namespace GuardSpace.Tests.TestUtilities;

/// <summary>Bridges between TorchSharp tensors and MathNet.Numerics (the independent float64 oracle).</summary>
internal static class Oracle
{
    static Oracle() => MathNet.Numerics.Control.UseManaged();

    public static Matrix<double> ToMatrix(Tensor t)
    {
        using var scope = NewDisposeScope();
        var c = t.detach().to_type(ScalarType.Float64).cpu().contiguous();
        var rows = (int)c.shape[0];
        var cols = (int)c.shape[1];
        var data = c.data<double>().ToArray();
        return Matrix<double>.Build.Dense(rows, cols, (i, j) => data[i * cols + j]);
    }

    public static Tensor ToTensor(Matrix<double> m, ScalarType dtype = ScalarType.Float64)
    {
        var data = new double[m.RowCount * m.ColumnCount];
        for (var i = 0; i < m.RowCount; i++)
        {
            for (var j = 0; j < m.ColumnCount; j++)
            {
                data[i * m.ColumnCount + j] = m[i, j];
            }
        }

        return tensor(data, [m.RowCount, m.ColumnCount]).to_type(dtype);
    }

    /// <summary>Seeded Gaussian matrix from MathNet (independent of torch's generator).</summary>
    public static Matrix<double> Random(int rows, int cols, int seed)
    {
        var rng = new System.Random(seed);
        return Matrix<double>.Build.Dense(rows, cols, (_, _) => Gaussian(rng));
    }

    /// <summary>A covariance X^T X of <paramref name="tokens"/> anisotropic activations of width n.</summary>
    public static Matrix<double> Covariance(int tokens, int n, int seed)
    {
        var x = Random(tokens, n, seed);
        // Anisotropic columns, as LLM activations are.
        var scale = Matrix<double>.Build.DenseDiagonal(n, n, i => Math.Pow(0.85, i) + 0.05);
        var xs = x * scale;
        return xs.TransposeThisAndMultiply(xs);
    }

    public static double RelativeError(Matrix<double> actual, Matrix<double> expected) =>
        (actual - expected).FrobeniusNorm() / Math.Max(expected.FrobeniusNorm(), double.Epsilon);

    public static double RelativeError(Tensor actual, Tensor expected) => RelativeError(ToMatrix(actual), ToMatrix(expected));

    private static double Gaussian(System.Random rng)
    {
        var u1 = 1.0 - rng.NextDouble();
        var u2 = rng.NextDouble();
        return Math.Sqrt(-2.0 * Math.Log(u1)) * Math.Cos(2 * Math.PI * u2);
    }
}
