using System.Text.Json;
using GuardSpace.Adapters;
using GuardSpace.Projection;
using GuardSpace.Tests.TestUtilities;
using TorchSharp;
using static TorchSharp.torch;

namespace GuardSpace.Tests.Adapters;

/// <summary>Reports with NaN or -Infinity serialise with System.Text.Json's defaults (issue 10, item 10).</summary>
public class DiagnosticsJsonTests
{
    [Fact]
    public void ReportsWithNaNAndMinusInfinitySerialise()
    {
        using var scope = NewDisposeScope();
        var plain = new TinyTransformer();
        using var pissa = GuardedModel.Attach(plain, new GuardedLoraOptions { Method = InitializationMethod.PiSSA, Rank = 2 });
        Assert.True(double.IsNaN(pissa.Layers[0].Decomposition!.ConditionEstimate));
        var json = JsonSerializer.Serialize(pissa.Layers);
        Assert.Contains("\"ConditionEstimate\":\"NaN\"", json);

        var x = randn(4, 4, dtype: ScalarType.Float64, generator: new Generator(3));
        using var everything = NullSpaceProjector.Fit("fc", x.T.mm(x) + eye(4, dtype: ScalarType.Float64), new NullSpaceOptions { Rule = NullSpaceThresholdRule.EnergyFraction, EnergyFraction = 1 });
        Assert.Equal(double.NegativeInfinity, everything.Diagnostics.Threshold);
        var text = JsonSerializer.Serialize(everything.Diagnostics);
        Assert.Contains("\"-Infinity\"", text);
        Assert.Equal(everything.Diagnostics, JsonSerializer.Deserialize<NullSpaceDiagnostics>(text));
    }
}
