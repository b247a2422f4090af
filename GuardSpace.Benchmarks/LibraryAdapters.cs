using GuardSpace.Adapters;
using GuardSpace.Collection;
using GuardSpace.Targeting;
using static TorchSharp.torch;

namespace GuardSpace.Benchmarks;

/// <summary>
/// Attaches the library's guarded adapters (GuardSpace method) to a plain <see cref="LlamaBlock"/>. Calibration: n/2
/// synthetic tokens fed through the block with the library's collector, so every projector stores an n x n/2 basis
/// (the worst case).
/// </summary>
public static class LibraryAdapters
{
    public static readonly TargetModules Targets = TargetModules.Suffixes("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj");

    public static GuardedModel Attach(LlamaBlock block, int rank)
    {
        CalibrationData calibration;
        using (var collector = new ActivationCovarianceCollector(block, Targets))
        using (var noGrad = no_grad())
        {
            using var scope = NewDisposeScope();
            var x = randn(1, LlamaBlock.Hidden / 2, LlamaBlock.Hidden, generator: BenchEnv.Seeded(4)).to(BenchEnv.Device);
            block.call(x);
            var covariances = collector.ToCovarianceSet();
            calibration = new CalibrationData { SafetyCovariances = covariances, HarmfulCovariances = covariances };
        }

        return GuardedModel.Attach(block, new GuardedLoraOptions { Rank = rank, Targets = Targets }, calibration);
    }
}
