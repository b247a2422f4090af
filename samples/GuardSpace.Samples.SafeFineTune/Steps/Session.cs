using System.Diagnostics;
using Spectre.Console;
using static TorchSharp.torch;

namespace GuardSpace.Samples.SafeFineTune;

/// <summary>
/// What every step shares: the options (with the embedded defaults filled in), the device and the stage clock. With no
/// --model it writes the tiny checkpoint and prompts first; disposing it deletes the prompts' temporary folder.
/// </summary>
internal sealed class Session : IDisposable
{
    private readonly List<(string Stage, TimeSpan Time)> timings = [];
    private readonly Stopwatch clock = Stopwatch.StartNew();
    private string? scratch;

    private Session(SampleOptions options)
    {
        Options = options;
        Device = options.Device == "cuda" ? CUDA : CPU;
    }

    public SampleOptions Options { get; private set; }

    public Device Device { get; }

    /// <summary>True when the run uses the sample's own tiny checkpoint and prompts.</summary>
    public bool Embedded { get; private init; }

    /// <summary>Each stage's wall time, in the order they ran.</summary>
    public IReadOnlyList<(string Stage, TimeSpan Time)> Timings => timings;

    public static Session Start(SampleOptions options)
    {
        var session = new Session(options) { Embedded = options.Embedded };
        if (session.Embedded)
        {
            session.scratch = Directory.CreateTempSubdirectory("guardspace-safe-fine-tune-").FullName;
            session.Options = EmbeddedDefault.Write(session.scratch, options);
            AnsiConsole.MarkupLineInterpolated($"[grey]No --model given: wrote a tiny random Llama checkpoint and tokenizer to {session.Options.Model} and prompts to {session.scratch}[/]");
            session.Lap("write the embedded checkpoint");
        }

        if (session.Options.Threads is { } threads)
        {
            set_num_threads(threads);
        }

        return session;
    }

    /// <summary>Records the time since the previous lap under <paramref name="stage"/>.</summary>
    public void Lap(string stage)
    {
        timings.Add((stage, clock.Elapsed));
        clock.Restart();
    }

    public void Dispose()
    {
        if (scratch is not null)
        {
            Directory.Delete(scratch, recursive: true);
            scratch = null;
        }
    }
}
