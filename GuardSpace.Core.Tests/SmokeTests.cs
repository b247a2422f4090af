using TorchSharp;

namespace GuardSpace.Tests;

public class SmokeTests
{
    [Fact]
    public void NativeTorchLoads()
    {
        using var a = torch.ones(2, 2);
        Assert.Equal(4.0, a.sum().item<float>());
    }
}
