using GuardSpace.Adapters;
using GuardSpace.Internal;
using TorchSharp;
using static TorchSharp.torch;

namespace GuardSpace.Training;

/// <summary>
/// The change of a guarded layer's outputs on the harmful calibration activations, from the stored covariance factor
/// and no forward pass. With <c>dW = s (B A - B0 A0)</c> (the weight change since attach), <c>F</c> the harmful
/// covariance factor of the directions the adapter can move in, and <c>Z = ||W C_h^(1/2)||_F^2</c> (the original
/// layer's output energy on those activations), the relative change is <c>||dW F||_F / sqrt(Z)</c>.
/// Written through the rank-2r factorisation <c>dW F = Bt M</c> with <c>Bt = s [B, -B0]</c> (m x 2r) and
/// <c>M = [A F; A0 F]</c> (2r x k): <c>||Bt M||^2 = &lt;Bt^T Bt, M M^T&gt;</c>, so no m x n or m x k matrix is formed.
/// </summary>
internal static class HarmfulDrift
{
    /// <summary>The relative output change of one adapter (0 when it has no factor or no harmful energy), in float64.</summary>
    public static double RelativeChange(GuardedLoraAdapter adapter)
    {
        var factor = adapter.HarmfulFactor;
        if (factor is null || !(adapter.HarmfulEnergy > 0) || factor.Rank == 0)
        {
            return 0;
        }

        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var f = factor.Factor.to(ScalarType.Float64, adapter.LoraA.device);
        var bt = OutputFactor(adapter, ScalarType.Float64);
        var m = InputFactor(adapter, f, ScalarType.Float64, cacheInitial: false);
        var energy = (bt.T.mm(bt) * m.mm(m.T)).sum().ToDouble();
        return Math.Sqrt(Math.Max(energy, 0) / adapter.HarmfulEnergy);
    }

    /// <summary>
    /// Adds the gradient of <c>lambda (||dW F||^2 + rho ||dW||^2) / Z</c> to the gradients of A and B, in place, with
    /// <c>rho = floor * tr(C_h) / n</c> (<see cref="GuardedLoraOptions.HarmfulDriftFloor"/>). Because the rows of A and A0 lie
    /// in the free directions, <c>rho ||dW||^2</c> is the floor <c>rho I</c> of the covariance on exactly those directions.
    /// Cost O(r (k + 2r) (m + n)): about one more projection of A per step. Does nothing when a factor or a gradient is missing.
    /// </summary>
    public static void AddPenaltyGradient(GuardedLoraAdapter adapter, double lambda, double floor = 0)
    {
        var factor = adapter.HarmfulFactor;
        var gradA = adapter.LoraA.grad;
        var gradB = adapter.LoraB.grad;
        var rho = floor * adapter.HarmfulMeanEigenvalue;
        if (factor is null || (factor.Rank == 0 && !(rho > 0)) || !(adapter.HarmfulEnergy > 0) || gradA is null || gradB is null)
        {
            return;
        }

        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var type = AdapterPrecision.ComputeType(adapter.LoraA.dtype);
        var r = adapter.Rank;
        var c = 2 * lambda / adapter.HarmfulEnergy;
        var bt = OutputFactor(adapter, type);
        var btbt = bt.T.mm(bt); // 2r x 2r, shared by both terms

        if (factor.Rank > 0)
        {
            // d/dM = c Bt^T Bt M; its first r rows are d/d(A F), so d/dA = c (Bt^T Bt M)[:r] F^T.
            var f = factor.For(adapter.LoraA);
            var m = InputFactor(adapter, f, type, cacheInitial: true);
            gradA.add_(btbt.narrow(0, 0, r).mm(m).mm(f.T).to_type(gradA.dtype), alpha: c);

            // d/dBt = c Bt M M^T; B's block is scaled by s.
            gradB.add_(bt.mm(m.mm(m.narrow(0, 0, r).T)).to_type(gradB.dtype), alpha: c * adapter.Scale);
        }

        if (rho > 0)
        {
            // rho ||Bt Ma||^2 with Ma = [A; A0] (2r x n): the same two gradients with Ma in place of M = Ma F.
            var ma = cat([adapter.LoraA.detach().to_type(type), adapter.InitialA.to_type(type)], 0);
            gradA.add_(btbt.narrow(0, 0, r).mm(ma).to_type(gradA.dtype), alpha: c * rho);
            gradB.add_(bt.mm(ma.mm(ma.narrow(0, 0, r).T)).to_type(gradB.dtype), alpha: c * rho * adapter.Scale);
        }
    }

    /// <summary>Bt = s [B, -B0] (m x 2r) in <paramref name="type"/>: <c>dW = Bt [A; A0]</c>.</summary>
    private static Tensor OutputFactor(GuardedLoraAdapter adapter, ScalarType type) =>
        cat([adapter.LoraB.detach().to_type(type), adapter.InitialB.to_type(type).neg()], 1) * adapter.Scale;

    /// <summary>M = [A F; A0 F] (2r x k) in <paramref name="type"/>; the training step reuses a cached A0 F.</summary>
    private static Tensor InputFactor(GuardedLoraAdapter adapter, Tensor f, ScalarType type, bool cacheInitial)
    {
        var a0f = cacheInitial ? adapter.InitialAFactor(f) : adapter.InitialA.to_type(type).mm(f);
        return cat([adapter.LoraA.detach().to_type(type).mm(f), a0f], 0);
    }
}
