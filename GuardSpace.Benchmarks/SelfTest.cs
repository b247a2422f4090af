using System.Globalization;
using GuardSpace.Decomposition;
using GuardSpace.Projection;
using TorchSharp;
using static TorchSharp.torch;

namespace GuardSpace.Benchmarks;

/// <summary>
/// <c>--self-test</c>: numeric checks of the ops GuardSpace relies on, run in float32 on <see cref="BenchEnv.Device"/>
/// (CUDA on GPU machines: proves a foreign libtorch works with the prebuilt LibTorchSharp) against float64 results on
/// the CPU. Prints one line per check and ends with "N passed, N failed".
/// </summary>
public static class SelfTest
{
    private static int _passed;
    private static int _failed;

    public static int Run(List<string> args)
    {
        _passed = _failed = 0;
        var device = BenchEnv.Device;
        Console.WriteLine($"self-test on {device} (float32) against CPU float64");
        var g = BenchEnv.Seeded(99);
        var a64 = randn(192, 128, dtype: ScalarType.Float64, generator: g);
        var x64 = randn(400, 128, dtype: ScalarType.Float64, generator: g);
        var spd64 = x64.T.mm(x64) + eye(128, dtype: ScalarType.Float64);
        var b64 = randn(128, 8, dtype: ScalarType.Float64, generator: g);
        Tensor Dev(Tensor t) => t.to(ScalarType.Float32, device);
        Tensor Cpu(Tensor t) => t.to(ScalarType.Float64, CPU);

        Check("svd singular values", () =>
        {
            var (_, s, _) = linalg.svd(Dev(a64), fullMatrices: false);
            var (_, s64, _) = linalg.svd(a64, fullMatrices: false);
            return Rel(Cpu(s), s64);
        }, 1e-5);
        Check("svd reconstruction", () =>
        {
            var (u, s, vh) = linalg.svd(Dev(a64), fullMatrices: false);
            return Rel(Cpu((u * s.unsqueeze(0)).mm(vh)), a64);
        }, 1e-5);
        Check("eigh eigenvalues", () =>
        {
            var (l, _) = linalg.eigh(Dev(spd64));
            var (l64, _) = linalg.eigh(spd64);
            return Rel(Cpu(l), l64);
        }, 1e-5);
        Check("eigh residual ||C V - V L||", () =>
        {
            var (l, v) = linalg.eigh(Dev(spd64));
            return Cpu(Dev(spd64).mm(v) - v * l.unsqueeze(0)).norm().ToDouble() / spd64.norm().ToDouble();
        }, 1e-5);
        Check("cholesky factor", () => Rel(Cpu(linalg.cholesky(Dev(spd64))), linalg.cholesky(spd64)), 1e-5);
        Check("solve", () => Rel(Cpu(linalg.solve(Dev(spd64), Dev(b64))), linalg.solve(spd64, b64)), 1e-4);
        Check("cholesky_solve", () =>
            Rel(Cpu(cholesky_solve(Dev(b64), linalg.cholesky(Dev(spd64)))), cholesky_solve(b64, linalg.cholesky(spd64))), 1e-4);
        Check("inv", () => Rel(Cpu(linalg.inv(Dev(spd64))), linalg.inv(spd64)), 1e-4);

        // Projector: harmful covariance of rank 96 in width 256.
        var h64 = Inputs.Activations(96, Inputs.Mixing(256), 5).to_type(ScalarType.Float64);
        var ch64 = h64.T.mm(h64);
        using var p32 = NullSpaceProjector.Fit("selftest", Dev(ch64), new NullSpaceOptions { ComputeType = ScalarType.Float32 });
        using var p64 = NullSpaceProjector.Fit("selftest", ch64, new NullSpaceOptions { ComputeType = ScalarType.Float64 });
        Check($"projector null dimension ({p32.NullDimension} vs {p64.NullDimension})", () => Math.Abs(p32.NullDimension - p64.NullDimension), 0);
        var rows64 = randn(16, 256, dtype: ScalarType.Float64, generator: g);
        Check("projector A P vs float64", () => Rel(Cpu(p32.ProjectRows(Dev(rows64))), p64.ProjectRows(rows64)), 1e-4);
        Check("projector idempotent", () =>
        {
            var once = p32.ProjectRows(Dev(rows64));
            return Rel(Cpu(p32.ProjectRows(once)), Cpu(once));
        }, 1e-5);
        Check("projector annihilates harmful activations ||H (A P)^T|| / ||H|| ||A||", () =>
            Cpu(Dev(h64).mm(p32.ProjectRows(Dev(rows64)).T)).norm().ToDouble() / (h64.norm().ToDouble() * rows64.norm().ToDouble()), 1e-5);

        // Decomposition (float32 on the device) against float64 on the CPU.
        var w64 = randn(192, 256, dtype: ScalarType.Float64, generator: g) / 16;
        var cs64 = Inputs.Covariance(512, 256, 61, CPU).to_type(ScalarType.Float64);
        using (var d32 = new SafetySubspaceDecomposer(new SafetySubspaceOptions { ComputeType = ScalarType.Float32 }).Decompose("selftest", Dev(w64), Dev(cs64), 8, p32))
        using (var d64 = new SafetySubspaceDecomposer(new SafetySubspaceOptions { ComputeType = ScalarType.Float64 }).Decompose("selftest", w64, cs64, 8, p64))
        {
            Check("decomposition B0 A0", () => Rel(Cpu(d32.AdapterB.mm(d32.AdapterA)), d64.AdapterB.mm(d64.AdapterA)), 1e-2);
            Check("decomposition residual (relative to ||W||)", () => Cpu(d32.Residual).sub(d64.Residual).norm().ToDouble() / w64.norm().ToDouble(), 1e-4);
            Check("decomposition W' + B0 A0 = W - B0 A0 (I - P)", () =>
                Rel(Cpu(d32.Residual + d32.AdapterB.mm(d32.AdapterA)), d64.Residual + d64.AdapterB.mm(d64.AdapterA)), 1e-4);
        }

        var iterativeOptions = new SafetySubspaceOptions { ComputeType = ScalarType.Float32, Solver = DecompositionSolver.Iterative };
        using (var iterative = new SafetySubspaceDecomposer(iterativeOptions).Decompose("selftest", Dev(w64), Dev(cs64), 8, p32))
        using (var d64 = new SafetySubspaceDecomposer(new SafetySubspaceOptions { ComputeType = ScalarType.Float64, Solver = DecompositionSolver.FullSvd }).Decompose("selftest", w64, cs64, 8, p64))
        {
            Check("iterative decomposition did not fall back (1 = it did)", () => iterative.Diagnostics.Solver == DecompositionSolver.Iterative ? 0 : 1, 0.5);
            Check("iterative decomposition B0 A0", () => Rel(Cpu(iterative.AdapterB.mm(iterative.AdapterA)), d64.AdapterB.mm(d64.AdapterA)), 1e-3);
        }

        GuardedStep(device);
        Console.WriteLine($"{_passed} passed, {_failed} failed");
        return _failed == 0 ? 0 : 1;
    }

    /// <summary>One guarded Adam step of a small Llama-shaped block on the device (float32) and on the CPU (float64).</summary>
    private static void GuardedStep(Device device)
    {
        (Dictionary<string, Tensor> A, double Loss, double OffSubspace) Step(Device dev, ScalarType type)
        {
            using var scope = NewDisposeScope();
            using var block = new LlamaBlock((name, inF, outF, seed) => new LoraLinear(name, inF, outF, 4, seed, dev, type), hidden: 128, intermediate: 352, heads: 4);
            var projectors = new Dictionary<string, INullSpaceProjector>();
            foreach (var (layer, input) in block.Adapters)
            {
                if (!projectors.ContainsKey(input))
                {
                    var h = Inputs.Activations(layer.InFeatures / 3, Inputs.Mixing(layer.InFeatures), 70 + layer.InFeatures).to(type, dev);
                    projectors[input] = NullSpaceProjector.Fit(input, h.T.mm(h), new NullSpaceOptions { ComputeType = type });
                }

                projectors[input].ProjectRowsInPlace(layer.A);
            }

            using var adam = torch.optim.Adam(block.parameters().Where(p => p.requires_grad), lr: 1e-3);
            var x = randn(1, 32, 128, dtype: ScalarType.Float64, generator: BenchEnv.Seeded(8)).to(type, dev);
            var target = randn(1, 32, 128, dtype: ScalarType.Float64, generator: BenchEnv.Seeded(9)).to(type, dev);
            adam.zero_grad();
            var loss = nn.functional.mse_loss(block.call(x), target);
            loss.backward();
            foreach (var (layer, input) in block.Adapters)
            {
                using var grad = layer.A.grad!;
                projectors[input].ProjectRowsInPlace(grad);
            }

            adam.step();
            double off = 0;
            var result = new Dictionary<string, Tensor>();
            foreach (var (layer, input) in block.Adapters)
            {
                projectors[input].ProjectRowsInPlace(layer.A);
                using var noGrad = no_grad();
                off = Math.Max(off, (projectors[input].ProjectRows(layer.A) - layer.A).norm().ToDouble() / layer.A.norm().ToDouble());
                result[layer.GetName()] = layer.A.detach().to(ScalarType.Float64, CPU).clone().DetachFromDisposeScope();
            }

            foreach (var p in projectors.Values)
            {
                p.Dispose();
            }

            return (result, loss.ToDouble(), off);
        }

        var dev32 = Step(device, ScalarType.Float32);
        var cpu64 = Step(CPU, ScalarType.Float64);
        Check("guarded step loss", () => Math.Abs(dev32.Loss - cpu64.Loss) / cpu64.Loss, 1e-5);
        Check("guarded step A = A P after the step", () => dev32.OffSubspace, 1e-5);
        Check("guarded step A vs float64", () => dev32.A.Keys.Max(k => Rel(dev32.A[k], cpu64.A[k])), 1e-3);
        foreach (var t in dev32.A.Values.Concat(cpu64.A.Values))
        {
            t.Dispose();
        }
    }

    private static double Rel(Tensor x, Tensor reference) => (x - reference).norm().ToDouble() / Math.Max(reference.norm().ToDouble(), 1e-300);

    private static void Check(string name, Func<double> error, double tolerance)
    {
        double e;
        try
        {
            using var scope = NewDisposeScope();
            e = error();
        }
        catch (Exception ex)
        {
            _failed++;
            Console.WriteLine($"FAIL {name}: {ex.GetType().Name}: {ex.Message}");
            return;
        }

        var ok = e <= tolerance && double.IsFinite(e);
        if (ok)
        {
            _passed++;
        }
        else
        {
            _failed++;
        }

        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{(ok ? "ok  " : "FAIL")} {name}: {e:E2} (tolerance {tolerance:E0})"));
    }
}
