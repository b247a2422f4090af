using GuardSpace.Adapters;
using GuardSpace.Collection;
using GuardSpace.Targeting;
using static TorchSharp.torch;

namespace GuardSpace.Benchmarks;

/// <summary>
/// Attaches the library's guarded adapters to a plain <see cref="LlamaBlock"/> (compiled only with GUARDSPACE_ADAPTERS,
/// once GuardSpace.Adapters / GuardSpace.Collection exist). Calibration: the same synthetic activations as the
/// stand-in (n/2 harmful tokens per input), fed through the block with the library's collector.
/// NOTE: written against the announced names before the API landed; adjust the options/calibration calls to the final API.
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
