using System.Text;
using GuardSpace.Tests.TestUtilities;

namespace GuardSpace.Tests.Fuzz;

/// <summary>The fuzz harness itself: it must see each kind of failure it exists to catch, and reproduce a case from its seed.</summary>
public sealed class FuzzRunnerTests
{
    private static readonly Dictionary<string, byte[]> Valid = new(StringComparer.Ordinal) { ["a.json"] = Encoding.UTF8.GetBytes("{\"x\":[1,2,{\"y\":\"z\"}],\"w\":true}") };

    private static FuzzOutcome RunWith(Action<string> load)
    {
        using var work = TempDirectory.Create("guardspace-fuzz-harness-");
        return FuzzRunner.Run(new LoaderTarget("harness", _ => { }, ["a.json"], load), Valid, 0, work, 3);
    }

    [Fact]
    public void AnExceptionOutsideTheAllowedSetIsAFailure()
    {
        var outcome = RunWith(_ => throw new NullReferenceException());
        Assert.Equal("NullReferenceException", outcome.Failure);
        Assert.Equal("ArgumentOutOfRangeException", RunWith(dir => throw new ArgumentOutOfRangeException(dir)).Failure);
    }

    [Fact]
    public void AnAllowedExceptionMustNameTheFolder()
    {
        Assert.Equal("unnamed-file", RunWith(_ => throw new InvalidDataException("bad file")).Failure);
        var named = RunWith(dir => throw new InvalidDataException($"'{dir}/a.json' is bad"));
        Assert.Null(named.Failure);
        Assert.Equal("refused:InvalidDataException", named.Class);
    }

    [Fact]
    public void AnAllocationOverTheBoundIsAFailure()
    {
        var outcome = RunWith(_ => GC.KeepAlive(new byte[64 << 20]));
        Assert.Equal("allocation", outcome.Failure);
        Assert.Equal("loaded", RunWith(_ => GC.KeepAlive(new byte[1 << 10])).Class);
    }

    [Fact]
    public void ACaseIsReproducedByItsIndex()
    {
        string Damaged(int index)
        {
            using var work = TempDirectory.Create("guardspace-fuzz-harness-");
            FuzzRunner.Run(new LoaderTarget("harness", _ => { }, ["a.json"], _ => { }), Valid, 0, work, index);
            return Convert.ToHexString(File.ReadAllBytes(Path.Combine(work, "a.json")));
        }

        // Every index damages the file (no wasted case), and the same index damages it the same way.
        for (var index = 0; index < 40; index++)
        {
            Assert.Equal(Damaged(index), Damaged(index));
            Assert.NotEqual(Convert.ToHexString(Valid["a.json"]), Damaged(index));
        }
    }
}
