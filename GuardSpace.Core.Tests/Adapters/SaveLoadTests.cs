using GuardSpace.Adapters;
using GuardSpace.Serialization;
using GuardSpace.Tests.TestUtilities;
using TorchSharp;
using static TorchSharp.torch;

namespace GuardSpace.Tests.Adapters;

public class SaveLoadTests
{
    private static (TinyTransformer Model, GuardedModel Guarded) TrainedAndSaved(string directory)
    {
        var model = new TinyTransformer();
        var guarded = GuardedModelInvariantTests.AttachGuardSpace(model);
        using var optimizer = guarded.WrapOptimizer(optim.Adam(guarded.TrainableParameters(), 1e-2));
        for (var step = 0; step < 10; step++)
        {
            GuardedModelInvariantTests.TrainStep(model, optimizer, step);
        }

        guarded.Save(directory);
        return (model, guarded);
    }

    [Fact]
    public void SavedAdapterLoadsOntoTheOriginalModelAndKeepsGuarding()
    {
        using var scope = NewDisposeScope();
        using var directory = TempDirectory.Create("guardspace-save-");
        var (model, guarded) = TrainedAndSaved(directory);
        using var _ = guarded;
        var probe = TinyTransformer.Tokens(4, 6, 51);
        var expected = model.call(probe).detach().reshape(-1, TinyTransformer.Vocab);

        var config = System.Text.Json.JsonDocument.Parse(File.ReadAllText(Path.Combine(directory, AdapterFiles.ConfigFile))).RootElement;
        Assert.Equal("GuardSpace", config.GetProperty("method").GetString());
        Assert.True(config.GetProperty("base_weights_modified").GetBoolean());
        Assert.Equal(GuardSpaceInfo.Version, config.GetProperty("library_version").GetString());
        Assert.Equal(12, config.GetProperty("targets").GetArrayLength());

        var fresh = new TinyTransformer();
        using var loaded = GuardedModel.Load(fresh, directory);
        var actual = fresh.call(probe).detach().reshape(-1, TinyTransformer.Vocab);
        Assert.True(Oracle.RelativeError(actual, expected) <= 1e-10, $"{Oracle.RelativeError(actual, expected):G3}");
        Assert.Equal(guarded.Projectors.Keys.OrderBy(k => k), loaded.Projectors.Keys.OrderBy(k => k));

        // The loaded projectors still guard: training on keeps the harmful outputs.
        var harmful = fresh.call(GuardedModelInvariantTests.HarmfulPrompts).detach();
        using var optimizer = loaded.WrapOptimizer(optim.Adam(loaded.TrainableParameters(), 1e-2));
        for (var step = 0; step < 20; step++)
        {
            GuardedModelInvariantTests.TrainStep(fresh, optimizer, step);
        }

        Assert.True(Oracle.RelativeError(fresh.call(GuardedModelInvariantTests.HarmfulPrompts).detach().reshape(-1, TinyTransformer.Vocab), harmful.reshape(-1, TinyTransformer.Vocab)) <= 1e-8);
    }

    [Fact]
    public void TruncatedOrCorruptedFilesRaiseInvalidDataException()
    {
        using var scope = NewDisposeScope();
        using var directory = TempDirectory.Create("guardspace-save-");
        var (_, guarded) = TrainedAndSaved(directory);
        guarded.Dispose();
        var state = Path.Combine(directory, AdapterFiles.StateFile);
        var bytes = File.ReadAllBytes(state);

        File.WriteAllBytes(state, bytes[..(bytes.Length / 2)]);
        var truncated = new TinyTransformer();
        var before = TinyTransformer.Snapshot(truncated);
        Assert.Throws<InvalidDataException>(() => GuardedModel.Load(truncated, directory));
        AssertUnchanged(truncated, before);

        File.WriteAllBytes(state, bytes);
        File.WriteAllText(Path.Combine(directory, AdapterFiles.ConfigFile), "{ \"format\": \"guardspace-adapter\", \"rank\": ");
        Assert.Throws<InvalidDataException>(() => GuardedModel.Load(new TinyTransformer(), directory));

        File.Delete(Path.Combine(directory, AdapterFiles.ConfigFile));
        Assert.Contains(AdapterFiles.ConfigFile, Assert.Throws<InvalidDataException>(() => GuardedModel.Load(new TinyTransformer(), directory)).Message);
    }

    [Fact]
    public void LoadingOntoAModelThatDoesNotFitListsEveryMismatchAndChangesNothing()
    {
        using var scope = NewDisposeScope();
        using var directory = TempDirectory.Create("guardspace-save-");
        var (_, guarded) = TrainedAndSaved(directory);
        guarded.Dispose();
        var other = new TinyTransformer(width: 16, mlp: 24, layers: 1);
        var before = TinyTransformer.Snapshot(other);
        var ex = Assert.Throws<ArgumentException>(() => GuardedModel.Load(other, directory));
        Assert.Contains("'blocks.1.q_proj' does not exist in the model", ex.Message);
        Assert.Contains("'blocks.0.up_proj' is 24 x 16 in the model but 32 x 16 in the adapter", ex.Message);
        AssertUnchanged(other, before);
        Assert.All(other.named_modules(), m => Assert.IsNotType<GuardedLoraAdapter>(m.module));
    }

    [Fact]
    public void SavingOverALongerFileLeavesNoOldBytes()
    {
        using var scope = NewDisposeScope();
        using var directory = TempDirectory.Create("guardspace-save-");
        var (_, guarded) = TrainedAndSaved(directory);
        using var _ = guarded;
        var state = Path.Combine(directory, AdapterFiles.StateFile);
        var length = new FileInfo(state).Length;
        File.WriteAllBytes(state, new byte[length * 3]);
        guarded.Save(directory);
        Assert.Equal(length, new FileInfo(state).Length);
        using var loaded = GuardedModel.Load(new TinyTransformer(), directory);
        Assert.Equal(12, loaded.Adapters.Count);
    }

    internal static void AssertUnchanged(TorchSharp.torch.nn.Module model, Dictionary<string, Tensor> before)
    {
        var after = model.named_parameters().ToDictionary(p => p.name, p => p.parameter);
        Assert.Equal(before.Keys.OrderBy(k => k), after.Keys.OrderBy(k => k));
        foreach (var (name, value) in before)
        {
            var a = after[name].detach();
            Assert.True((a.eq(value) | (a.isnan() & value.isnan())).all().item<bool>(), $"{name} changed");
        }
    }
}
