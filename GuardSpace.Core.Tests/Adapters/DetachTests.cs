using GuardSpace.Adapters;
using GuardSpace.Targeting;
using GuardSpace.Tests.TestUtilities;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace GuardSpace.Tests.Adapters;

/// <summary>Detach gives the original model back bit for bit; attaching twice is refused clearly (issue 10, item 7).</summary>
public class DetachTests
{
    [Fact]
    public void ReplacedLayersWithResidualsComeBackBitForBitAfterTrainingAndMerging()
    {
        using var scope = NewDisposeScope();
        var model = new TinyTransformer();
        var probe = TinyTransformer.Tokens(3, 6, 4);
        var output = model.call(probe).detach();
        var state = ModelState.Of(model);
        var guarded = GuardedModelInvariantTests.AttachGuardSpace(model);
        using (var optimizer = guarded.WrapOptimizer(optim.Adam(guarded.TrainableParameters(), 1e-2)))
        {
            for (var step = 0; step < 5; step++)
            {
                GuardedModelInvariantTests.TrainStep(model, optimizer, step);
            }
        }

        guarded.Merge();
        guarded.Detach();
        state.AssertSame(model);
        Assert.True(ModelState.BitEqual(model.call(probe).detach(), output));
        Assert.Throws<ObjectDisposedException>(() => guarded.TrainableParameters());
    }

    [Theory]
    [InlineData(InitializationMethod.PiSSA)]
    [InlineData(InitializationMethod.Lora)]
    public void HookedLayersComeBackBitForBit(InitializationMethod method)
    {
        using var scope = NewDisposeScope();
        var model = new ModuleSurgeryTests.SealedFieldModel();
        var input = randn(4, 6, dtype: ScalarType.Float64);
        var output = model.call(input).detach();
        var state = ModelState.Of(model);
        var guarded = GuardedModel.Attach(model, new GuardedLoraOptions { Method = method, Rank = 2, Targets = TargetModules.AllLinear(), Seed = 2 });
        Assert.Equal(InterceptionMode.ForwardHook, guarded.Layers.Single(l => l.Name == "typed").Interception);
        using (no_grad())
        {
            guarded.Adapters.Values.ToList().ForEach(a => a.LoraB.add_(0.25));
        }

        guarded.Merge();     // LoRA merges into the user's own weights: Detach must still give them back exactly
        guarded.Unmerge();
        guarded.Merge();
        guarded.Detach();
        state.AssertSame(model);
        Assert.True(ModelState.BitEqual(model.call(input).detach(), output), "no hook left behind");
    }

    [Fact]
    public void AfterAMoveTheOriginalLayersComeBackOnTheNewDtype()
    {
        using var scope = NewDisposeScope();
        manual_seed(6);
        var model = Sequential(("fc1", Linear(8, 6)), ("act", Tanh()), ("fc2", Linear(6, 4)));
        var reference = model.named_parameters().ToDictionary(p => p.name, p => p.parameter.detach().to_type(ScalarType.Float64));
        var linears = model.named_modules().Where(m => m.module is Linear).Select(m => m.module).ToList();
        var guarded = GuardedModel.Attach(model, new GuardedLoraOptions { Method = InitializationMethod.PiSSA, Rank = 2, Targets = TargetModules.AllLinear() });
        model.to(ScalarType.Float64);
        guarded.Detach();
        Assert.Equal(linears, model.named_modules().Where(m => m.module is Linear).Select(m => m.module).ToList());
        foreach (var (name, parameter) in model.named_parameters())
        {
            Assert.Equal(ScalarType.Float64, parameter.dtype);
            Assert.True(ModelState.BitEqual(parameter.detach(), reference[name]), name);
            Assert.True(parameter.requires_grad, name);
        }

        Assert.Equal([4L, 4L], model.call(randn(4, 8, dtype: ScalarType.Float64)).shape);
    }

    [Fact]
    public void AttachingTwiceToReplacedLayersSaysTheModelIsGuarded()
    {
        using var scope = NewDisposeScope();
        var model = new TinyTransformer();
        using var guarded = GuardedModelInvariantTests.AttachGuardSpace(model);
        var before = TinyTransformer.Snapshot(model);
        var ex = Assert.Throws<InvalidOperationException>(() => GuardedModelInvariantTests.AttachGuardSpace(model));
        Assert.Contains("already guarded", ex.Message);
        Assert.Contains("Detach()", ex.Message);
        Assert.Contains("GuardedModel.Load", ex.Message);
        Assert.DoesNotContain("match no Linear", ex.Message);
        SaveLoadTests.AssertUnchanged(model, before);
    }

    [Fact]
    public void AttachingTwiceToHookedLayersSaysTheModelIsGuardedAndDetachAllowsIt()
    {
        using var scope = NewDisposeScope();
        var model = new ModuleSurgeryTests.SealedFieldModel();
        var options = new GuardedLoraOptions { Method = InitializationMethod.Lora, Rank = 2, Targets = TargetModules.Suffixes("typed") };
        var guarded = GuardedModel.Attach(model, options);
        var ex = Assert.Throws<InvalidOperationException>(() => GuardedModel.Attach(model, options));
        Assert.Contains("already guarded", ex.Message);
        Assert.Contains("'typed_guard'", ex.Message);
        Assert.DoesNotContain("already registered", ex.Message);

        using var directory = TempDirectory.Create("guardspace-twice-");
        guarded.Save(directory);
        Assert.Contains("already guarded", Assert.Throws<InvalidOperationException>(() => GuardedModel.Load(model, directory)).Message);

        guarded.Detach();
        using var again = GuardedModel.Attach(model, options);
        Assert.Single(again.Adapters);
    }
}
