using GuardSpace.Adapters;
using GuardSpace.Tests.TestUtilities;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace GuardSpace.Tests.Adapters;

/// <summary>Invariants 1, 5, 6, 7 and 9 of design.md section 3 on a small transformer-like model (float64).</summary>
[Trait("Category", "Invariant")]
public class GuardedModelInvariantTests
{
    internal static readonly Tensor HarmfulPrompts = TinyTransformer.Tokens(2, 6, 100).DetachFromDisposeScope();  // 12 tokens < width 16
    internal static readonly Tensor SafetyPrompts = TinyTransformer.Tokens(4, 6, 200).DetachFromDisposeScope();

    internal static CalibrationData Calibration(Module<Tensor, Tensor> model) => new()
    {
        RunSafetyPrompts = _ => model.call(SafetyPrompts).Dispose(),
        RunHarmfulPrompts = _ => model.call(HarmfulPrompts).Dispose(),
    };

    /// <summary>The paper's official configuration with <paramref name="method"/>: the invariants of design.md section 3 are its.</summary>
    internal static GuardedModel AttachGuardSpace(TinyTransformer model, InitializationMethod method = InitializationMethod.GuardSpace, int rank = 4)
    {
        var options = GuardedLoraOptions.Official();
        (options.Rank, options.Method, options.Seed) = (rank, method, 3);
        return GuardedModel.Attach(model, options, Calibration(model));
    }

    [Theory]
    [InlineData(InitializationMethod.Lora)]
    [InlineData(InitializationMethod.PiSSA)]
    [InlineData(InitializationMethod.MiLoRA)]
    [InlineData(InitializationMethod.CorDAKpm)]
    [InlineData(InitializationMethod.CorDAIpm)]
    [InlineData(InitializationMethod.NullSpaceLora)]
    [InlineData(InitializationMethod.GuardSpace)]
    public void IdentityAtInitialisation(InitializationMethod method)
    {
        using var scope = NewDisposeScope();
        var model = new TinyTransformer();
        var probe = TinyTransformer.Tokens(3, 6, 7);
        var before = model.call(probe).detach();
        using var guarded = AttachGuardSpace(model, method);

        Assert.Equal(12, guarded.Adapters.Count); // q, k, v, o, up, down in two blocks; lm_head excluded
        Assert.All(guarded.Adapters.Keys, k => Assert.DoesNotContain("lm_head", k));
        var after = model.call(probe).detach();
        Assert.True(Oracle.RelativeError(after.reshape(-1, TinyTransformer.Vocab), before.reshape(-1, TinyTransformer.Vocab)) <= 1e-10, method.ToString());

        // Non-vacuous: the adapter path is live (perturbing B changes the output).
        using (no_grad())
        {
            guarded.Adapters.Values.First().LoraB.add_(0.5);
        }

        var perturbed = model.call(probe).detach();
        Assert.True(Oracle.RelativeError(perturbed.reshape(-1, TinyTransformer.Vocab), before.reshape(-1, TinyTransformer.Vocab)) > 1e-4);
    }

    public static TheoryData<string> Optimizers => ["sgd", "adam", "adamw"];

    internal static optim.Optimizer MakeOptimizer(string kind, IEnumerable<Parameter> parameters) => kind switch
    {
        "sgd" => optim.SGD(parameters, 0.05, momentum: 0.9, weight_decay: 0.01),
        "adam" => optim.Adam(parameters, 1e-2, weight_decay: 0.01),
        _ => optim.AdamW(parameters, 1e-2, weight_decay: 0.1),
    };

    internal static double TrainStep(Module<Tensor, Tensor> model, optim.Optimizer optimizer, int step)
    {
        using var scope = NewDisposeScope();
        var tokens = TinyTransformer.Tokens(8, 6, 1000 + step);
        var targets = TinyTransformer.Tokens(8, 6, 5000 + step);
        optimizer.zero_grad();
        var loss = functional.cross_entropy(model.call(tokens).reshape(-1, TinyTransformer.Vocab), targets.reshape(-1));
        loss.backward();
        optimizer.step();
        return loss.item<double>();
    }

    [Theory]
    [MemberData(nameof(Optimizers))]
    public void NullSetInvarianceAfter200Steps(string optimizerKind)
    {
        using var scope = NewDisposeScope();
        var model = new TinyTransformer();
        using var guarded = AttachGuardSpace(model);
        Assert.All(guarded.Layers, l => Assert.True(l.NullSpace!.NullDimension >= 4, $"{l.Name}: null dimension {l.NullSpace.NullDimension}"));

        var layerOutputs = LayerOutputsOnHarmfulPrompts(model, guarded);
        var harmfulBefore = model.call(HarmfulPrompts).detach();
        var probe = TinyTransformer.Tokens(4, 6, 77);
        var probeBefore = model.call(probe).detach();

        using var optimizer = guarded.WrapOptimizer(MakeOptimizer(optimizerKind, guarded.TrainableParameters()));
        var firstLoss = TrainStep(model, optimizer, 0);
        var lastLoss = firstLoss;
        for (var step = 1; step < 200; step++)
        {
            lastLoss = TrainStep(model, optimizer, step % 10);
        }

        // Training did something: the loss fell and outputs elsewhere moved.
        Assert.True(lastLoss < firstLoss, $"loss {firstLoss} -> {lastLoss}");
        Assert.True(Oracle.RelativeError(model.call(probe).detach().reshape(-1, TinyTransformer.Vocab), probeBefore.reshape(-1, TinyTransformer.Vocab)) > 1e-3);

        // ...but not on the harmful calibration prompts: every guarded layer and the logits are unchanged.
        var layerOutputsAfter = LayerOutputsOnHarmfulPrompts(model, guarded);
        foreach (var (name, before) in layerOutputs)
        {
            var error = Oracle.RelativeError(layerOutputsAfter[name], before);
            Assert.True(error <= 1e-8, $"{optimizerKind}: layer {name} drifted by {error:G3}");
        }

        var harmfulAfter = model.call(HarmfulPrompts).detach();
        var logitsError = Oracle.RelativeError(harmfulAfter.reshape(-1, TinyTransformer.Vocab), harmfulBefore.reshape(-1, TinyTransformer.Vocab));
        Assert.True(logitsError <= 1e-8, $"{optimizerKind}: harmful logits drifted by {logitsError:G3}");
    }

    [Fact]
    public void GradientProjectionWithoutReprojectionBreaksInvarianceUnderAdam()
    {
        using var scope = NewDisposeScope();
        var model = new TinyTransformer();
        using var guarded = AttachGuardSpace(model);
        var harmfulBefore = model.call(HarmfulPrompts).detach();
        using var adam = optim.Adam(guarded.TrainableParameters(), 1e-2);
        for (var step = 0; step < 50; step++)
        {
            using var stepScope = NewDisposeScope();
            adam.zero_grad();
            var loss = functional.cross_entropy(
                model.call(TinyTransformer.Tokens(8, 6, 1000 + step)).reshape(-1, TinyTransformer.Vocab),
                TinyTransformer.Tokens(8, 6, 5000 + step).reshape(-1));
            loss.backward();
            guarded.AfterBackward();
            adam.step();
            // Deliberately no guarded.AfterStep(): Adam's per-coordinate scaling leaves the null space.
        }

        var drift = Oracle.RelativeError(model.call(HarmfulPrompts).detach().reshape(-1, TinyTransformer.Vocab), harmfulBefore.reshape(-1, TinyTransformer.Vocab));
        Assert.True(drift > 1e-6, $"without the post-step re-projection the harmful logits should drift; drift {drift:G3}");

        // The same loop WITH the re-projection restores invariance from here on: A is back in the null space.
        guarded.AfterStep();
        var reprojected = model.call(HarmfulPrompts).detach();
        Assert.True(Oracle.RelativeError(reprojected.reshape(-1, TinyTransformer.Vocab), harmfulBefore.reshape(-1, TinyTransformer.Vocab)) <= 1e-8);
    }

    [Fact]
    public void HookAdapterFollowsTheForwardProjectionTrajectoryUnderAdam()
    {
        using var scope = NewDisposeScope();
        manual_seed(11);
        var model = Sequential(("fc1", Linear(16, 12, dtype: ScalarType.Float64)), ("act", Tanh()), ("fc2", Linear(12, 8, dtype: ScalarType.Float64)));
        var harmful = randn(10, 16, dtype: ScalarType.Float64); // 10 tokens: fc1 has a 6-dimensional null space
        var safety = randn(40, 16, dtype: ScalarType.Float64);
        // The official preset: the reference below has no drift penalty, which would change the trajectory.
        var options = GuardedLoraOptions.Official();
        (options.Rank, options.Targets) = (3, GuardSpace.Targeting.TargetModules.Suffixes("fc1", "fc2"));
        using var guarded = GuardedModel.Attach(model, options,
            new CalibrationData { RunSafetyPrompts = _ => model.call(safety).Dispose(), RunHarmfulPrompts = _ => model.call(harmful).Dispose() });

        // Reference: the official formulation y = W' x + B (A (P x)) with a dense P, written only here.
        var references = guarded.Adapters.Values.Select(a => new ForwardProjectedLora(a, guarded.Projectors.Values.Single(p => p.Name == a.LayerName))).ToList();
        var reference = Sequential(("fc1", references[0]), ("act", Tanh()), ("fc2", references[1]));

        using var optimizer = guarded.WrapOptimizer(optim.Adam(guarded.TrainableParameters(), 1e-2));
        using var referenceOptimizer = optim.Adam(references.SelectMany(r => new[] { r.A, r.B }), 1e-2);
        for (var step = 0; step < 50; step++)
        {
            using var stepScope = NewDisposeScope();
            var x = randn(16, 16, dtype: ScalarType.Float64, generator: new Generator((ulong)(300 + step)));
            var y = randn(16, 8, dtype: ScalarType.Float64, generator: new Generator((ulong)(900 + step)));
            optimizer.zero_grad();
            functional.mse_loss(model.call(x), y).backward();
            optimizer.step();
            referenceOptimizer.zero_grad();
            functional.mse_loss(reference.call(x), y).backward();
            referenceOptimizer.step();

            foreach (var (adapter, r) in guarded.Adapters.Values.Zip(references))
            {
                var effectiveA = r.A.detach().matmul(r.P);
                Assert.True(Oracle.RelativeError(adapter.LoraA, effectiveA) <= 1e-8, $"step {step} {adapter.LayerName}: A differs by {Oracle.RelativeError(adapter.LoraA, effectiveA):G3}");
                Assert.True(Oracle.RelativeError(adapter.LoraB, r.B) <= 1e-8, $"step {step} {adapter.LayerName}: B differs");
            }
        }

        Assert.True(Oracle.RelativeError(references[0].A, references[0].A0) > 1e-3, "the reference actually trained");
    }

    [Fact]
    public void MergeGivesTheSameOutputsAndUnmergeRestoresThem()
    {
        using var scope = NewDisposeScope();
        var model = new TinyTransformer();
        using var guarded = AttachGuardSpace(model);
        using var optimizer = guarded.WrapOptimizer(optim.Adam(guarded.TrainableParameters(), 1e-2));
        for (var step = 0; step < 20; step++)
        {
            TrainStep(model, optimizer, step);
        }

        var probe = TinyTransformer.Tokens(4, 6, 31);
        var trained = model.call(probe).detach().reshape(-1, TinyTransformer.Vocab);
        var frozen = guarded.Adapters.Values.Select(a => a.FrozenWeight.detach().clone()).ToList();

        guarded.Merge();
        Assert.True(guarded.IsMerged);
        Assert.True(Oracle.RelativeError(model.call(probe).detach().reshape(-1, TinyTransformer.Vocab), trained) <= 1e-10, "merged outputs");
        var merged = guarded.Adapters.Values.First();
        Assert.True(Oracle.RelativeError(merged.FrozenWeight, frozen[0]) > 1e-6, "merge changed the weight");

        guarded.Unmerge();
        Assert.False(guarded.IsMerged);
        Assert.True(Oracle.RelativeError(model.call(probe).detach().reshape(-1, TinyTransformer.Vocab), trained) <= 1e-10, "unmerged outputs");
        foreach (var (adapter, weight) in guarded.Adapters.Values.Zip(frozen))
        {
            Assert.True(Oracle.RelativeError(adapter.FrozenWeight, weight) <= 1e-12, $"{adapter.LayerName} restored");
        }
    }

    [Fact]
    public void MergeRefusesNonFiniteWeightsAndWritesNothing()
    {
        using var scope = NewDisposeScope();
        var model = new TinyTransformer();
        using var guarded = AttachGuardSpace(model);
        var snapshot = TinyTransformer.Snapshot(model);
        using (no_grad())
        {
            guarded.Adapters.Values.Last().LoraB[0, 0] = tensor(double.NaN);
        }

        var ex = Assert.Throws<InvalidOperationException>(guarded.Merge);
        Assert.Contains(guarded.Adapters.Keys.Last(), ex.Message);
        Assert.False(guarded.IsMerged);
        foreach (var (name, p) in model.named_parameters())
        {
            if (!name.Contains("lora_"))
            {
                Assert.True(p.detach().eq(snapshot[name]).all().item<bool>(), $"{name} was written");
            }
        }
    }

    [Fact]
    public void DisablingTheAdaptersRestoresTheOriginalModel()
    {
        using var scope = NewDisposeScope();
        var model = new TinyTransformer();
        var probe = TinyTransformer.Tokens(3, 6, 9);
        var original = model.call(probe).detach().reshape(-1, TinyTransformer.Vocab);
        using var guarded = AttachGuardSpace(model);
        using var optimizer = guarded.WrapOptimizer(optim.Adam(guarded.TrainableParameters(), 1e-2));
        for (var step = 0; step < 10; step++)
        {
            TrainStep(model, optimizer, step);
        }

        Assert.True(Oracle.RelativeError(model.call(probe).detach().reshape(-1, TinyTransformer.Vocab), original) > 1e-4);
        guarded.SetAdaptersEnabled(false);
        Assert.True(Oracle.RelativeError(model.call(probe).detach().reshape(-1, TinyTransformer.Vocab), original) <= 1e-10);
        guarded.SetAdaptersEnabled(true);
    }

    /// <summary>Each guarded layer's output on the harmful prompts, captured with forward hooks on the adapters.</summary>
    internal static Dictionary<string, Tensor> LayerOutputsOnHarmfulPrompts(Module<Tensor, Tensor> model, GuardedModel guarded)
    {
        var outputs = new Dictionary<string, Tensor>();
        var removers = guarded.Adapters.Values.Select(a => a.register_forward_hook((m, _, y) =>
        {
            outputs[((GuardedLoraAdapter)m).LayerName] = y.detach().clone().reshape(-1, y.shape[^1]).DetachFromDisposeScope();
            return null!;
        })).ToList();
        using (no_grad())
        {
            model.call(HarmfulPrompts).Dispose();
        }

        removers.ForEach(r => r.remove());
        return outputs;
    }

    /// <summary>The official formulation: y = W' x + b + B (A (P x)) with a dense P applied to every token.</summary>
    private sealed class ForwardProjectedLora : Module<Tensor, Tensor>
    {
        public readonly Parameter A;
        public readonly Parameter B;
        public readonly Tensor A0;
        public readonly Tensor P;
        private readonly Tensor _weight;
        private readonly Tensor? _bias;

        public ForwardProjectedLora(GuardedLoraAdapter adapter, GuardSpace.Projection.INullSpaceProjector projector) : base("ref")
        {
            _weight = adapter.FrozenWeight.detach().clone().DetachFromDisposeScope();
            _bias = adapter.FrozenBias?.detach().clone().DetachFromDisposeScope();
            A = new Parameter(adapter.InitialA.detach().clone());
            B = new Parameter(adapter.InitialB.detach().clone());
            A0 = adapter.InitialA.detach().clone().DetachFromDisposeScope();
            P = projector.ProjectRows(eye(adapter.InFeatures, dtype: ScalarType.Float64)).DetachFromDisposeScope();
            register_parameter("A", A);
            register_parameter("B", B);
        }

        public override Tensor forward(Tensor x) =>
            functional.linear(x, _weight, _bias) + functional.linear(functional.linear(functional.linear(x, P), A), B);
    }
}
