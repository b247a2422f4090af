using GuardSpace.Serialization;
using GuardSpace.Tests.Adapters;
using GuardSpace.Tests.TestUtilities;
using TorchSharp;
using static TorchSharp.torch;

namespace GuardSpace.Tests.Serialization;

/// <summary>Save replaces the state file and the config together or not at all (issue 10, item 9).</summary>
public class SaveTransactionTests
{
    [Theory]
    [InlineData(AdapterFiles.StateFile)]
    [InlineData(AdapterFiles.ConfigFile)]
    public void AFailingWriteLeavesThePreviousPairAsItWas(string failing)
    {
        using var scope = NewDisposeScope();
        var model = new TinyTransformer();
        using var guarded = GuardedModelInvariantTests.AttachGuardSpace(model);
        using var directory = TempDirectory.Create("guardspace-transaction-");
        guarded.Save(directory);
        var state = File.ReadAllBytes(SavedAdapters.StatePath(directory));
        var config = File.ReadAllBytes(SavedAdapters.ConfigPath(directory));

        using (var optimizer = guarded.WrapOptimizer(optim.Adam(guarded.TrainableParameters(), 1e-2)))
        {
            GuardedModelInvariantTests.TrainStep(model, optimizer, 0);
        }

        Assert.Throws<IOException>(() => guarded.SaveWith(directory, path =>
        {
            if (Path.GetFileName(path) == failing)
            {
                throw new IOException("injected: disk full");
            }
        }));

        Assert.Equal(state, File.ReadAllBytes(SavedAdapters.StatePath(directory)));
        Assert.Equal(config, File.ReadAllBytes(SavedAdapters.ConfigPath(directory)));
        Assert.Equal([AdapterFiles.StateFile, AdapterFiles.ConfigFile], Directory.GetFiles(directory).Select(f => Path.GetFileName(f)!).Order().ToArray());

        guarded.Save(directory); // and the next save goes through
        Assert.NotEqual(state, File.ReadAllBytes(SavedAdapters.StatePath(directory)));
    }
}
