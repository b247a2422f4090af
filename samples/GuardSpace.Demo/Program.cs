using GuardSpace.Demo;
using Spectre.Console;

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
    Console.Error.WriteLine(ex.Message);
    Console.Error.WriteLine(DemoOptions.Usage);
    return 2;
}

try
{
    return new DemoRunner(options).Run();
}
catch (Exception ex)
{
    AnsiConsole.WriteException(ex);
    return 1;
}
