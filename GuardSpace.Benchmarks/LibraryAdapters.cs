using GuardSpace.Adapters;
using GuardSpace.Collection;
using GuardSpace.Targeting;
using static TorchSharp.torch;

namespace GuardSpace.Benchmarks;

/// <summary>
/// Attaches the library's guarded adapters (GuardSpace method) to a plain <see cref="LlamaBlock"/>. Calibration: n/2
/// synthetic tokens fed through the block with the library's collector, so every projector stores an n x n/2 basis
/// (the worst case), or with <c>fillInputs</c> 4n tokens that leave no exact null space. The default options are the library's capacity-aware mode (projection plus the harmful-drift
/// penalty, whose gradient the hook adds); <c>official: true</c> is <see cref="GuardedLoraOptions.Official"/> (projection only).
/// </summary>
public static class LibraryAdapters
{
    public static readonly TargetModules Targets = TargetModules.Suffixes("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj");

    public static GuardedModel Attach(LlamaBlock block, int rank, bool official = false, bool fillInputs = false)
    {
        CalibrationData calibration;
        using (var collector = new ActivationCovarianceCollector(block, Targets))
        using (var noGrad = no_grad())
        {
            using var scope = NewDisposeScope();
            // fillInputs: 4n tokens whose spectrum decays like 1/i^2, so no layer has an exact null space.
            var tokens = fillInputs ? 4 * LlamaBlock.Hidden : LlamaBlock.Hidden / 2;
            var x = randn(1, tokens, LlamaBlock.Hidden, generator: BenchEnv.Seeded(4)).to(BenchEnv.Device);
            if (fillInputs)
            {
                x = x / (arange(1, LlamaBlock.Hidden + 1, device: BenchEnv.Device).to_type(x.dtype) * 0.05);
            }

            block.call(x);
            var covariances = collector.ToCovarianceSet();
            calibration = new CalibrationData { SafetyCovariances = covariances, HarmfulCovariances = covariances };
        }

        var options = official ? GuardedLoraOptions.Official() : new GuardedLoraOptions();
        (options.Rank, options.Targets) = (rank, Targets);
        return GuardedModel.Attach(block, options, calibration);
    }
}
