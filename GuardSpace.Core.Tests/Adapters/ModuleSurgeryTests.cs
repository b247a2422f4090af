using GuardSpace.Adapters;
using GuardSpace.Targeting;
using GuardSpace.Tests.TestUtilities;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace GuardSpace.Tests.Adapters;

public class ModuleSurgeryTests
{
    private static GuardedModel AttachLora(Module model, TargetModules targets, int rank = 2) =>
        GuardedModel.Attach(model, new GuardedLoraOptions { Method = InitializationMethod.Lora, Rank = rank, Targets = targets, Seed = 5 });

    /// <summary>Checks the adapter is live: identity at init, B perturbed changes the output, and a training step reaches it.</summary>
    private static void AssertGuardedAndLive(Module<Tensor, Tensor> model, GuardedModel guarded, Tensor input, int expectedAdapters)
    {
        Assert.Equal(expectedAdapters, guarded.Adapters.Count);
        var trainable = model.parameters().Count(p => p.requires_grad);
        Assert.Equal(2 * expectedAdapters, trainable);
        var before = model.call(input).detach();
        using (no_grad())
        {
            foreach (var a in guarded.Adapters.Values)
            {
                a.LoraB.fill_(0.3);
            }
        }

        Assert.True((model.call(input).detach() - before).abs().max().item<double>() > 1e-6, "adapters are in the forward path");
        var names = model.named_parameters().Select(p => p.name).ToList();
        Assert.All(guarded.Adapters.Values, a => Assert.Contains(names, n => n.EndsWith("lora_A", StringComparison.Ordinal)));
    }

    [Fact]
    public void SequentialChildrenAreReplaced()
    {
        using var scope = NewDisposeScope();
        var model = Sequential(("fc1", Linear(6, 8, dtype: ScalarType.Float64)), ("act", ReLU()), ("fc2", Linear(8, 4, dtype: ScalarType.Float64)));
        var input = randn(5, 6, dtype: ScalarType.Float64);
        var before = model.call(input).detach();
        using var guarded = AttachLora(model, TargetModules.Suffixes("fc1", "fc2"));
        Assert.True(model.call(input).detach().allclose(before, 0, 1e-12));
        Assert.All(guarded.Layers, l => Assert.Equal(InterceptionMode.Replaced, l.Interception));
        Assert.IsType<GuardedLoraAdapter>(model.named_children().First().module);
        AssertGuardedAndLive(model, guarded, input, 2);
    }

    [Fact]
    public void ModuleListAndModuleDictEntriesAreReplacedInListAndRegistry()
    {
        using var scope = NewDisposeScope();
        var model = new ListAndDictModel();
        var input = randn(3, 6, dtype: ScalarType.Float64);
        var before = model.call(input).detach();
        using var guarded = AttachLora(model, TargetModules.AllLinear());
        Assert.Equal(["items.0", "items.1", "named.left", "named.right"], guarded.Adapters.Keys.Order().ToArray());
        Assert.True(model.call(input).detach().allclose(before, 0, 1e-12));
        Assert.IsType<GuardedLoraAdapter>(model.Items[0]);
        Assert.IsType<GuardedLoraAdapter>(model.Named["left"]);
        Assert.All(guarded.Layers, l => Assert.Equal(InterceptionMode.Replaced, l.Interception));
        AssertGuardedAndLive(model, guarded, input, 4);
    }

    [Fact]
    public void SealedLinearFieldFallsBackToAForwardHookAndRegisteredAdapter()
    {
        using var scope = NewDisposeScope();
        var model = new SealedFieldModel();
        var input = randn(4, 6, dtype: ScalarType.Float64);
        var before = model.call(input).detach();
        using var guarded = GuardedModel.Attach(model, new GuardedLoraOptions { Method = InitializationMethod.PiSSA, Rank = 2, Targets = TargetModules.AllLinear() });
        var report = guarded.Layers.Single(l => l.Name == "typed");
        Assert.Equal(InterceptionMode.ForwardHook, report.Interception);
        Assert.Equal("typed" + GuardedModel.HookSuffix, report.AdapterPath);
        Assert.Equal(InterceptionMode.Replaced, guarded.Layers.Single(l => l.Name == "loose").Interception);
        Assert.Contains(model.named_children(), c => c.name == "typed_guard" && c.module is GuardedLoraAdapter);

        // PiSSA changed the frozen weight to a residual; the hook adds the adapter back: identity at init.
        Assert.True(model.call(input).detach().allclose(before, 0, 1e-10));
        AssertGuardedAndLive(model, guarded, input, 2);

        // Disposing the adapter module removes the hook.
        var adapter = guarded.Adapters["typed"];
        var withHook = model.call(input).detach();
        adapter.Dispose();
        Assert.False(model.call(input).detach().allclose(withHook, 0, 1e-9), "hook removed");
    }

    [Fact]
    public void ToFloat64AfterAttachMovesAdaptersAndTheHookStillProjects()
    {
        using var scope = NewDisposeScope();
        manual_seed(3);
        var model = Sequential(("fc1", Linear(12, 10)), ("act", Tanh()), ("fc2", Linear(10, 6)));
        var harmful = randn(5, 12);
        using var guarded = GuardedModel.Attach(model, new GuardedLoraOptions { Method = InitializationMethod.NullSpaceLora, Rank = 2, Targets = TargetModules.Suffixes("fc1") },
            new CalibrationData { RunHarmfulPrompts = _ => model.call(harmful).Dispose() });
        Assert.Equal(ScalarType.Float32, guarded.Adapters["fc1"].LoraA.dtype);

        model.to(ScalarType.Float64);
        var adapter = guarded.Adapters["fc1"];
        Assert.Equal(ScalarType.Float64, adapter.LoraA.dtype);
        Assert.Equal(ScalarType.Float64, adapter.FrozenWeight.dtype);
        Assert.All(model.parameters(), p => Assert.Equal(ScalarType.Float64, p.dtype));

        // Parameters are new objects after .to(): the optimizer is built afterwards, from the handle.
        var harmful64 = harmful.to_type(ScalarType.Float64);
        var before = model.call(harmful64).detach();
        using var optimizer = guarded.WrapOptimizer(optim.Adam(guarded.TrainableParameters(), 1e-2));
        for (var i = 0; i < 30; i++)
        {
            using var s = NewDisposeScope();
            optimizer.zero_grad();
            functional.mse_loss(model.call(randn(8, 12, dtype: ScalarType.Float64)), randn(8, 6, dtype: ScalarType.Float64)).backward();
            optimizer.step();
        }

        Assert.True(Oracle.RelativeError(model.call(harmful64).detach(), before) <= 1e-10);
        Assert.True(adapter.LoraB.abs().max().item<double>() > 0, "trained");
    }

    [Fact]
    public void OptimizerBuiltOnStaleParametersIsRejected()
    {
        using var scope = NewDisposeScope();
        var model = Sequential(("fc1", Linear(6, 8)), ("fc2", Linear(8, 4)));
        using var guarded = AttachLora(model, TargetModules.Suffixes("fc1"));
        var stale = optim.Adam(guarded.TrainableParameters(), 1e-3);
        model.to(ScalarType.Float64);
        var ex = Assert.Throws<ArgumentException>(() => guarded.WrapOptimizer(stale));
        Assert.Contains("fc1", ex.Message);
        Assert.Contains(".to()", ex.Message);
    }

    [Fact]
    public void FailedSurgeryLeavesTheModelBitForBitAsItWas()
    {
        using var scope = NewDisposeScope();
        var model = new SealedFieldModel();
        var before = TinyTransformer.Snapshot(model);
        var flags = model.named_parameters().ToDictionary(p => p.name, p => p.parameter.requires_grad);
        var children = model.named_modules().Select(m => (m.name, m.module)).ToList();
        var input = randn(4, 6, dtype: ScalarType.Float64);
        var output = model.call(input).detach();
        // "typed" (hook mode, weight overwritten with the PiSSA residual) is done before "loose" fails.
        Assert.Throws<IOException>(() => FaultInjection.AttachWithFault(
            model,
            new GuardedLoraOptions { Method = InitializationMethod.PiSSA, Rank = 2, Targets = TargetModules.Suffixes("typed", "loose") },
            name => { if (name == "loose") throw new IOException("injected"); }));

        SaveLoadTests.AssertUnchanged(model, before);
        Assert.Equal(flags, model.named_parameters().ToDictionary(p => p.name, p => p.parameter.requires_grad));
        Assert.Equal(children, model.named_modules().Select(m => (m.name, m.module)).ToList());
        Assert.True(model.call(input).detach().eq(output).all().item<bool>(), "no hook left behind");
    }

    [Fact]
    public void FailureBeforeSurgeryLeavesTheModelUnchanged()
    {
        using var scope = NewDisposeScope();
        var model = new TinyTransformer();
        var before = TinyTransformer.Snapshot(model);
        using (no_grad())
        {
            ((Linear)model.named_modules().First(m => m.name == "blocks.1.down_proj").module).weight![0, 0] = tensor(double.NaN);
        }

        before["blocks.1.down_proj.weight"] = model.named_parameters().First(p => p.name == "blocks.1.down_proj.weight").parameter.detach().clone();
        var ex = Assert.Throws<ArgumentException>(() => GuardedModelInvariantTests.AttachGuardSpace(model));
        Assert.Contains("blocks.1.down_proj", ex.Message);
        SaveLoadTests.AssertUnchanged(model, before);
        Assert.All(model.named_modules(), m => Assert.IsNotType<GuardedLoraAdapter>(m.module));
    }

    [Fact]
    public void BadAttachInputsAreExplained()
    {
        using var scope = NewDisposeScope();
        var model = new TinyTransformer();
        var none = Assert.Throws<ArgumentException>(() => AttachLora(model, TargetModules.Suffixes("query")));
        Assert.Contains("match no Linear layer", none.Message);
        Assert.Contains("blocks.0.q_proj", none.Message);

        var rank = Assert.Throws<ArgumentOutOfRangeException>(() => AttachLora(model, TargetModules.Suffixes("q_proj"), rank: 17));
        Assert.Contains("blocks.0.q_proj", rank.Message);

        var calibration = Assert.Throws<ArgumentException>(() => GuardedModel.Attach(model, new GuardedLoraOptions { Rank = 2 }));
        Assert.Contains("RunSafetyPrompts", calibration.Message);
        Assert.All(model.named_modules(), m => Assert.IsNotType<GuardedLoraAdapter>(m.module));
    }

    [Fact]
    public void SharedInputLayersShareOneProjector()
    {
        using var scope = NewDisposeScope();
        var model = new TinyTransformer();
        using var guarded = GuardedModelInvariantTests.AttachGuardSpace(model);
        // Per block: q/k/v (one input), o, up, down: 4 groups, 8 in all.
        Assert.Equal(8, guarded.Projectors.Count);
        var qkv = guarded.Layers.Where(l => l.Name.StartsWith("blocks.0.", StringComparison.Ordinal) && l.Name[^6..] is "q_proj" or "k_proj" or "v_proj").ToList();
        Assert.Single(qkv.Select(l => l.CovarianceGroup).Distinct());
        Assert.Same(guarded.Adapters["blocks.0.q_proj"].Projector, guarded.Adapters["blocks.0.v_proj"].Projector);
    }

    private sealed class ListAndDictModel : Module<Tensor, Tensor>
    {
        private readonly ModuleList<Module<Tensor, Tensor>> items;
        private readonly ModuleDict<Module<Tensor, Tensor>> named;

        public ListAndDictModel() : base(nameof(ListAndDictModel))
        {
            manual_seed(2);
            items = new ModuleList<Module<Tensor, Tensor>>(Linear(6, 6, dtype: ScalarType.Float64), Linear(6, 6, dtype: ScalarType.Float64));
            named = new ModuleDict<Module<Tensor, Tensor>>();
            named.Add("left", Linear(6, 5, dtype: ScalarType.Float64));
            named.Add("right", Linear(5, 3, dtype: ScalarType.Float64));
            RegisterComponents();
        }

        public ModuleList<Module<Tensor, Tensor>> Items => items;

        public ModuleDict<Module<Tensor, Tensor>> Named => named;

        public override Tensor forward(Tensor x)
        {
            foreach (var item in items)
            {
                x = item.call(x).tanh();
            }

            return named["right"].call(named["left"].call(x));
        }
    }

    /// <summary>One Linear in a field typed Linear (hook mode) and one in a field typed Module (replaced).</summary>
    internal sealed class SealedFieldModel : Module<Tensor, Tensor>
    {
        private readonly Linear typed;                 // sealed type: cannot hold an adapter
        private Module<Tensor, Tensor> loose;

        public SealedFieldModel() : base(nameof(SealedFieldModel))
        {
            manual_seed(4);
            typed = Linear(6, 5, dtype: ScalarType.Float64);
            loose = Linear(5, 3, dtype: ScalarType.Float64);
            RegisterComponents();
        }

        public override Tensor forward(Tensor x) => loose.call(typed.call(x).tanh());
    }
}

public class InterceptionVerificationTests
{
    [Fact]
    public void LayersBypassedByForwardCallsAreReportedByName()
    {
        using var scope = NewDisposeScope();
        var model = new ForwardCallingParent();
        var input = randn(3, 4, dtype: ScalarType.Float64);
        using var guarded = GuardedModel.Attach(model, new GuardedLoraOptions { Method = InitializationMethod.Lora, Rank = 2, Targets = TargetModules.AllLinear() });
        Assert.Equal(InterceptionMode.ForwardHook, guarded.Layers.Single(l => l.Name == "bypassed").Interception);
        var ex = Assert.Throws<InvalidOperationException>(() => guarded.VerifyInterception(() => model.call(input).Dispose()));
        Assert.Contains("'bypassed' (forward hook)", ex.Message);
        Assert.DoesNotContain("'reached'", ex.Message);
    }

    [Fact]
    public void VerificationPassesWhenEveryAdapterIsReached()
    {
        using var scope = NewDisposeScope();
        var model = new TinyTransformer();
        using var guarded = GuardedModel.Attach(model, new GuardedLoraOptions { Method = InitializationMethod.Lora, Rank = 2 });
        var forwards = 0;
        var error = Record.Exception(() => guarded.VerifyInterception(() =>
        {
            forwards++;
            model.call(TinyTransformer.Tokens(1, 4, 1)).Dispose();
        }));
        Assert.Null(error);
        Assert.Equal(1, forwards);

        // The same check refuses a forward that reaches no adapter and names every one: it passed above because it looked.
        var none = Assert.Throws<InvalidOperationException>(() => guarded.VerifyInterception(() => { }));
        Assert.True(guarded.Adapters.Count > 1, "several adapters to name");
        Assert.All(guarded.Adapters.Keys, name => Assert.Contains($"'{name}'", none.Message));
    }

    private sealed class ForwardCallingParent : Module<Tensor, Tensor>
    {
        private readonly Linear bypassed;   // sealed field, and called with forward(): no hook can fire
        private readonly Linear reached;

        public ForwardCallingParent() : base(nameof(ForwardCallingParent))
        {
            bypassed = Linear(4, 4, dtype: ScalarType.Float64);
            reached = Linear(4, 2, dtype: ScalarType.Float64);
            RegisterComponents();
        }

        public override Tensor forward(Tensor x) => reached.call(bypassed.forward(x));
    }
}
