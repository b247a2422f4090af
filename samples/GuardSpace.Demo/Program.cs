// The GuardSpace demo (docs/demo.md). Exit codes: 0 success (and --help), 1 a runtime failure or a method that
// trained nothing without --allow-frozen (message on stderr), 2 a usage error (one line and a hint on stderr).
using GuardSpace.Demo;

if (args is ["pareto", ..])
{
    return ParetoChart.Run(args[1..]);
}

DemoOptions options;
try
{
    options = DemoOptions.Parse(args);
}
catch (HelpRequestedException)
{
    Console.WriteLine(DemoOptions.Usage);
    return 0;
}
catch (Exception ex) when (ex is ArgumentException or FormatException)
{
    Console.Error.WriteLine($"error: {ex.Message}");
    Console.Error.WriteLine("Run with --help for the options.");
    return 2;
}

try
{
    return new DemoRunner(options).Run();
}
catch (Exception ex)
{
    Console.Error.WriteLine($"error: {ex.GetType().Name}: {ex.Message}");
    Console.Error.WriteLine(ex.StackTrace);
    return 1;
}
