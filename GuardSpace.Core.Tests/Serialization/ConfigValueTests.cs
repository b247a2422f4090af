using System.Text.Json.Nodes;
using GuardSpace.Adapters;
using GuardSpace.Serialization;
using GuardSpace.Tests.TestUtilities;
using TorchSharp;
using static TorchSharp.torch;

namespace GuardSpace.Tests.Serialization;

/// <summary>Bad values inside a config are InvalidDataException naming the file and every field (issue 10, item 9).</summary>
public class ConfigValueTests
{
    [Fact]
    public void BadValuesNameTheFileAndEveryField()
    {
        using var scope = NewDisposeScope();
        using var directory = SavedAdapters.TrainAndSave();
        SavedAdapters.EditConfig(directory, config =>
        {
            config["rank"] = 0;
            config["targets"] = new JsonArray();
            config["null_space"]!["energy_fraction"] = 1.5;
            config["method"] = "GuardSpacey";
        });
        var model = new TinyTransformer();
        var state = ModelState.Of(model);
        var ex = Assert.Throws<InvalidDataException>(() => GuardedModel.Load(model, directory));
        Assert.Contains(AdapterFiles.ConfigFile, ex.Message);
        Assert.Contains("rank is 0", ex.Message);
        Assert.Contains("targets is empty", ex.Message);
        Assert.Contains("null_space.energy_fraction", ex.Message);
        Assert.Contains("method 'GuardSpacey'", ex.Message);
        state.AssertSame(model);
    }

    [Fact]
    public void LayersThatDisagreeWithTheTargetsAreNamed()
    {
        using var scope = NewDisposeScope();
        using var directory = SavedAdapters.TrainAndSave();
        SavedAdapters.EditConfig(directory, config => config["targets"]!.AsArray().RemoveAt(0));
        var ex = Assert.Throws<InvalidDataException>(() => GuardedModel.Load(new TinyTransformer(), directory));
        Assert.Contains("do not name the same layers", ex.Message);
        Assert.Contains(AdapterFiles.ConfigFile, ex.Message);
    }
}
