using GuardSpace.Tests.TestUtilities;

namespace GuardSpace.Tests.Fuzz;

/// <summary>A key written twice in guardspace_config.json (found by the fuzz test's duplicate-key class) is refused, not resolved silently.</summary>
public sealed class AdapterConfigDuplicateKeyTests
{
    [Theory]
    [InlineData("\"rank\": 4,")]
    [InlineData("\"scale\": 0.5,")]
    public void ADuplicatedConfigKeyIsRefusedNamingTheFileAndTheKey(string duplicate)
    {
        using var saved = SavedAdapters.TrainAndSave();
        var path = SavedAdapters.ConfigPath(saved);
        var text = File.ReadAllText(path);
        File.WriteAllText(path, text.Insert(text.IndexOf('{', StringComparison.Ordinal) + 1, duplicate));
        using var model = new TinyTransformer(seed: 1);
        var before = ModelState.Of(model);

        var error = Assert.Throws<InvalidDataException>(() => GuardedModel.Load(model, saved));

        Assert.Contains(path, error.Message, StringComparison.Ordinal);
        Assert.Contains(duplicate[1..duplicate.IndexOf('"', 1)], error.Message, StringComparison.Ordinal);
        before.AssertSame(model);
    }
}
