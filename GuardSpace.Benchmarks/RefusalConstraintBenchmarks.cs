using BenchmarkDotNet.Attributes;
using GuardSpace.Behaviour;
using TorchSharp;
using static TorchSharp.torch;

namespace GuardSpace.Benchmarks;

/// <summary>
/// The refusal constraint's cost per training step, side by side with plain LoRA in the same run, on the Llama-shaped
/// block of <see cref="TrainingStepBenchmarks"/> (512 task tokens, float32):
/// <list type="bullet">
/// <item><see cref="PlainLora"/> (baseline): forward, backward, Adam step;</item>
/// <item><see cref="ConstrainedActive"/>: the same through <see cref="RefusalConstraint.Wrap"/> with the multiplier held
/// positive (its most expensive case): a refusal batch of 1/<see cref="RefusalShare"/> of the task's tokens forward and
/// backward every step, and a no-grad validation pass over as many tokens every 10 steps (the default
/// <see cref="RefusalConstraintOptions.EvaluateEvery"/>); the demo replays 1/4 of its batch, the SafeFineTune sample 1/4;</item>
/// <item><see cref="ConstrainedIdle"/>: the multiplier at 0 (the constraint holds): only the validation pass every 10 steps.</item>
/// </list>
/// </summary>
public class RefusalConstraintBenchmarks
{

    private LlamaBlock _block = null!;
    private torch.optim.Optimizer _optimizer = null!;
    private Tensor _x = null!, _target = null!, _refusalX = null!, _refusalTarget = null!;

    [Params(16)]
    public int Rank { get; set; }

    /// <summary>The refusal batch is 1/RefusalShare of the task batch's tokens.</summary>
    [Params(8, 4)]
    public int RefusalShare { get; set; }

    [GlobalSetup(Target = nameof(PlainLora))]
    public void SetupPlain() => Build(multiplier: null);

    [GlobalSetup(Target = nameof(ConstrainedActive))]
    public void SetupActive() => Build(multiplier: 1.0);

    [GlobalSetup(Target = nameof(ConstrainedIdle))]
    public void SetupIdle() => Build(multiplier: 0.0);

    private void Build(double? multiplier)
    {
        var device = BenchEnv.Device;
        _x = randn(1, TrainingStepBenchmarks.Tokens, LlamaBlock.Hidden, generator: BenchEnv.Seeded(1)).to(device).DetachFromDisposeScope();
        _target = randn(1, TrainingStepBenchmarks.Tokens, LlamaBlock.Hidden, generator: BenchEnv.Seeded(2)).to(device).DetachFromDisposeScope();
        var refusalTokens = TrainingStepBenchmarks.Tokens / RefusalShare;
        _refusalX = randn(1, refusalTokens, LlamaBlock.Hidden, generator: BenchEnv.Seeded(3)).to(device).DetachFromDisposeScope();
        _refusalTarget = randn(1, refusalTokens, LlamaBlock.Hidden, generator: BenchEnv.Seeded(4)).to(device).DetachFromDisposeScope();
        _block = LlamaBlock.WithLora(Rank, device);
        var adam = torch.optim.Adam(_block.parameters().Where(p => p.requires_grad), lr: 1e-4);
        if (multiplier is not { } m)
        {
            _optimizer = adam;
        }
        else
        {
            // The validation pass runs for real (its cost is part of the measurement), but the reading is scripted: 0 as the
            // baseline, then exactly the target, which keeps the multiplier where it starts.
            var baseline = true;
            double Validation()
            {
                using (NewDisposeScope())
                {
                    _ = nn.functional.mse_loss(_block.call(_refusalX), _refusalTarget).item<float>();
                }

                var reading = baseline ? 0.0 : RefusalConstraintOptions.DefaultTolerance;
                baseline = false;
                return reading;
            }

            var constraint = new RefusalConstraint(
                new RefusalObjective { BatchLoss = () => nn.functional.mse_loss(_block.call(_refusalX), _refusalTarget), ValidationLoss = Validation },
                new RefusalConstraintOptions { InitialMultiplier = m });
            _optimizer = constraint.Wrap(adam);
        }

        BenchEnv.Sync();
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _optimizer.Dispose();
        _block.Dispose();
        _x.Dispose();
        _target.Dispose();
        _refusalX.Dispose();
        _refusalTarget.Dispose();
    }

    [Benchmark(Baseline = true)]
    public void PlainLora() => Step();

    [Benchmark]
    public void ConstrainedActive() => Step();

    [Benchmark]
    public void ConstrainedIdle() => Step();

    private void Step()
    {
        using var scope = NewDisposeScope();
        _optimizer.zero_grad();
        nn.functional.mse_loss(_block.call(_x), _target).backward();
        _optimizer.step();
        BenchEnv.Sync();
    }
}
