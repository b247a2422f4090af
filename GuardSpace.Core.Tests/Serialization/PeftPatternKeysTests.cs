using GuardSpace.Serialization;
using GuardSpace.Tests.TestUtilities;

namespace GuardSpace.Tests.Serialization;

public class PeftPatternKeysTests
{
    private static readonly string[] Paths =
    [
        "model", "model.layers", "model.layers.0", "model.layers.0.self_attn", "model.layers.0.self_attn.q_proj", "model.layers.0.mlp.down_proj",
        "model.layers.1", "model.layers.1.self_attn.q_proj", "model.layers.10.self_attn.q_proj", "lm_head",
    ];

    [Fact]
    public void EveryKeyIsMatchedByBothPeftRulesThroughTheirPatternNotOnlyTheExactFallback()
    {
        var layers = new[] { "model.layers.0.mlp.down_proj", "model.layers.1.self_attn.q_proj" };
        var keys = PeftPatternKeys.For(layers, Paths);
        foreach (var layer in layers)
        {
            var key = keys[layer];
            Assert.NotEqual(layer, key); // a proper suffix: the older rule's regex matches it, not just its exact lookup
            Assert.True(PeftRules.Old(key, layer));
            Assert.True(PeftRules.New(key, layer));
            Assert.Single(Paths, p => PeftRules.Old(key, p) || PeftRules.New(key, p));
        }
    }

    [Fact]
    public void KeysStillResolveWhenPeftSeesThePathsWithoutTheWrapperSegment()
    {
        // A base model loaded without its outer wrapper names the layer "layers.1.self_attn.q_proj".
        var key = PeftPatternKeys.For(["model.layers.1.self_attn.q_proj"], Paths)["model.layers.1.self_attn.q_proj"];
        Assert.Equal(key, PeftRules.Resolve([key], "layers.1.self_attn.q_proj", PeftRules.Old));
        Assert.Equal(key, PeftRules.Resolve([key], "layers.1.self_attn.q_proj", PeftRules.New));
        Assert.NotEqual(key, PeftRules.Resolve([key], "layers.10.self_attn.q_proj", PeftRules.New));
    }

    [Fact]
    public void AnAmbiguousSuffixFallsBackToTheFullPath()
    {
        string[] paths = ["text.layers.0.q", "vision.layers.0.q"];
        var keys = PeftPatternKeys.For(paths, paths);
        Assert.Equal("text.layers.0.q", keys["text.layers.0.q"]);
        Assert.Equal("vision.layers.0.q", keys["vision.layers.0.q"]);
        Assert.Equal("text.layers.0.q", PeftRules.Resolve(keys.Values, "text.layers.0.q", PeftRules.Old));
        Assert.Equal("vision.layers.0.q", PeftRules.Resolve(keys.Values, "vision.layers.0.q", PeftRules.New));
    }
}
