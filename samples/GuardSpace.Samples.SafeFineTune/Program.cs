// From a Hugging Face checkpoint folder to a PEFT adapter: load a Llama-family model and its tokenizer, read the
// calibration prompts and the training data from files, attach GuardSpace (safety subspace + harmful null space),
// fine-tune, export the adapter in PEFT's layout, and generate a few answers before and after. Each step is a class
// in Steps/; a new option is one row in CommandLine/SampleCommandLine.cs.
// With no arguments the sample writes a tiny random checkpoint and prompts of its own and runs everything on them.
// Exit codes: 0 success (and --help), 1 a runtime failure or a failed check (message on stderr), 2 a usage error.
using GuardSpace.Models.Templates;
using GuardSpace.Samples.SafeFineTune;
using Spectre.Console;

if (SampleCommandLine.WantsHelp(args))
{
    Console.Out.Write(SampleCommandLine.Usage);
    return ExitCode.Ok;
}

SampleOptions options;
try
{
    options = SampleCommandLine.Parse(args);
}
catch (UsageException ex)
{
    Console.Error.WriteLine($"error: {ex.Message}");
    Console.Error.WriteLine(SampleCommandLine.Hint);
    return ExitCode.Usage;
}

try
{
    using var session = Session.Start(options);
    using var checkpoint = LoadCheckpoint.Run(session);
    var showcase = Showcase.Before(session, checkpoint);
    var train = ScreenData.Run(session, checkpoint);
    var refusals = BuildRefusalData.Run(session, checkpoint);
    using var guarded = AttachGuardSpace.Run(session, checkpoint);
    RequireTrainable.Run(session, guarded);
    using var harmfulBefore = HarmfulLogits.Measure(session, checkpoint);
    var training = FineTune.Run(session, checkpoint, guarded, train, refusals);
    using var harmfulAfter = HarmfulLogits.Measure(session, checkpoint);
    var drift = harmfulBefore.ChangeTo(harmfulAfter);
    AnsiConsole.MarkupLineInterpolated($"relative change of the logits on the harmful prompts: {drift:G3}");
    ExportAdapter.Run(session, checkpoint, guarded);
    var mergedMatches = MergedExport.Run(session, checkpoint, guarded, harmfulAfter);
    DumpLogits.Run(session, checkpoint);
    showcase.After(session, checkpoint);
    var exportMatches = VerifyExport.Run(session, checkpoint, train);
    return Summary.Run(session, exportMatches && mergedMatches && CheckEmbeddedRun.Passed(session, training, drift));
}
catch (Exception ex) when (ex is SampleFailure or IOException or InvalidDataException or NotSupportedException or UnauthorizedAccessException or TemplateException)
{
    // A failed step or a bad folder or file: the message names the file, the tensor or the line, and the fix.
    Console.Error.WriteLine($"error: {ex.Message}");
    return ExitCode.Failed;
}
catch (Exception ex)
{
    // Anything else is a bug or a setting the library refused: the type and the trace help to find which.
    Console.Error.WriteLine($"error: {ex.GetType().Name}: {ex.Message}");
    Console.Error.WriteLine(ex.StackTrace);
    return ExitCode.Failed;
}
