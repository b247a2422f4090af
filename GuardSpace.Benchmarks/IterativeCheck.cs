using System.Globalization;
using GuardSpace.Decomposition;
using GuardSpace.Projection;
using TorchSharp;
using static TorchSharp.torch;

namespace GuardSpace.Benchmarks;

/// <summary>
/// <c>--check-iterative</c>: accuracy of the library's iterative solver (<see cref="DecompositionSolver.Iterative"/>). The
/// reference is the library in float64 with the full SVD; the library in float32 with the full SVD and the library in
/// float32 with the iterative solver (which works in float64 internally) are compared with it on the same inputs and the
/// same float32 projector.
/// Errors: relative Frobenius error of the adapter product B0 A0 (the part of W the adapter takes over), of the
/// residual W' (relative to ||W||), and the largest relative error of the r selected singular values.
/// Passes when the iterative path did not fall back and is no less accurate than the library's float32 full-SVD path
/// (within 2x, or below 1e-5).
/// </summary>
public static class IterativeCheck
{
    public static int Run(List<string> args)
    {
        var shapes = args.Where(a => a.Contains('x', StringComparison.Ordinal) && char.IsDigit(a[0])).ToList();
        if (shapes.Count == 0)
        {
            shapes = ["512x512", "1024x1024", "768x512", "512x768", "2048x2048"];
        }

        const int rank = DecompositionBenchmarksBase.Rank;
        var lib64 = new SafetySubspaceDecomposer(new SafetySubspaceOptions { ComputeType = ScalarType.Float64, Solver = DecompositionSolver.FullSvd });
        var lib32 = new SafetySubspaceDecomposer(new SafetySubspaceOptions { ComputeType = ScalarType.Float32, Solver = DecompositionSolver.FullSvd });
        var iterative32 = new SafetySubspaceDecomposer(new SafetySubspaceOptions { ComputeType = ScalarType.Float32, Solver = DecompositionSolver.Iterative });
        var failed = 0;
        Console.WriteLine("| Shape | Path | B0 A0 rel. err | W' rel. err | max sigma rel. err | iterations | Verdict |");
        Console.WriteLine("|-------|------|---------------:|------------:|-------------------:|-----------:|---------|");
        foreach (var shape in shapes)
        {
            using var scope = NewDisposeScope();
            var (m, n) = DecompositionBenchmarksBase.ParseShape(shape);
            var w = Inputs.Weight(m, n, 11, BenchEnv.Device);
            var cs = Inputs.Covariance(Inputs.SafetyTokens(n), n, 21, BenchEnv.Device);
            var ch = Inputs.Covariance(Inputs.HarmfulTokens(n), n, 31, BenchEnv.Device);
            using var projector = NullSpaceProjector.Fit("layer", ch, new NullSpaceOptions { ComputeType = ScalarType.Float32 });
            using var projector64 = projector.To(BenchEnv.Device, ScalarType.Float64);
            using var reference = lib64.Decompose("layer", w.to_type(ScalarType.Float64), cs.to_type(ScalarType.Float64), rank, projector64);
            using var single = lib32.Decompose("layer", w, cs, rank, projector);
            using var iterative = iterative32.Decompose("layer", w, cs, rank, projector);

            var refProduct = reference.AdapterB.mm(reference.AdapterA);
            var refSigma = reference.Diagnostics.SingularValues.Skip(reference.Diagnostics.SingularValues.Count - rank).ToArray();
            var wNorm = w.to_type(ScalarType.Float64).norm().ToDouble();
            (double Product, double Residual, double Sigma) Errors(Tensor b, Tensor a, Tensor residual, IReadOnlyList<double> sigma) =>
                ((b.to_type(ScalarType.Float64).mm(a.to_type(ScalarType.Float64)) - refProduct).norm().ToDouble() / refProduct.norm().ToDouble(),
                 (residual.to_type(ScalarType.Float64) - reference.Residual).norm().ToDouble() / wNorm,
                 sigma.Zip(refSigma, (x, y) => Math.Abs(x - y) / y).Max());

            var singleSigma = single.Diagnostics.SingularValues.Skip(single.Diagnostics.SingularValues.Count - rank).ToArray();
            var e32 = Errors(single.AdapterB, single.AdapterA, single.Residual, singleSigma);
            var iterativeSigma = iterative.Diagnostics.AdapterIndices.Select(i => iterative.Diagnostics.SingularValues[i]).ToArray();
            var eg = Errors(iterative.AdapterB, iterative.AdapterA, iterative.Residual, iterativeSigma);
            var fellBack = iterative.Diagnostics.Solver != DecompositionSolver.Iterative;
            var ok = !fellBack && Within(eg.Product, e32.Product) && Within(eg.Residual, e32.Residual) && Within(eg.Sigma, e32.Sigma);
            failed += ok ? 0 : 1;
            Console.WriteLine(Row(shape, "library float32, full SVD", e32, "-", "reference: library float64"));
            Console.WriteLine(Row(shape, "library float32, iterative", eg,
                fellBack ? $"fell back: {iterative.Diagnostics.SolverFallbackReason}" : iterative.Diagnostics.SolverIterations.ToString(CultureInfo.InvariantCulture), ok ? "PASS" : "FAIL"));
        }

        Console.WriteLine($"{shapes.Count - failed} passed, {failed} failed");
        return failed == 0 ? 0 : 1;
    }

    private static bool Within(double candidate, double library) => candidate <= Math.Max(2 * library, 1e-5);

    private static string Row(string shape, string path, (double Product, double Residual, double Sigma) e, string iterations, string verdict) =>
        string.Create(CultureInfo.InvariantCulture, $"| {shape} | {path} | {e.Product:E2} | {e.Residual:E2} | {e.Sigma:E2} | {iterations} | {verdict} |");
}
