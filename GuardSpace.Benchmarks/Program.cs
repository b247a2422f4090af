using BenchmarkDotNet.Columns;
using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Diagnosers;
using BenchmarkDotNet.Exporters;
using BenchmarkDotNet.Exporters.Csv;
using BenchmarkDotNet.Running;
using GuardSpace.Benchmarks;
using TorchSharp;

// Own options (removed before BenchmarkDotNet sees the arguments):
//   --device cpu|cuda[:N]   where tensors live (also GUARDSPACE_BENCH_DEVICE)
//   --threads N             torch.set_num_threads(N)
//   --memory-table          print the projector-storage table (not a timed benchmark) and exit
//   --check-iterative       accuracy check of the library's iterative solver against its full SVD and exit
//   --llama-block           decompose one whole Llama-2-7B-shaped block (7 layers, 4096/11008) once and print its time
//   --self-test             numeric self-test of the device against float64 CPU results and exit
//   --paired-training [N]   GuardSpaceHook / PlainLora step ratio from N interleaved (ABBA) rounds and exit
//   --out-of-process        use BenchmarkDotNet's default toolchain instead of the in-process one
var rest = new List<string>();
string? mode = null;
var inProcess = true;
for (var i = 0; i < args.Length; i++)
{
    switch (args[i])
    {
        case "--device" when i + 1 < args.Length:
            Environment.SetEnvironmentVariable(BenchEnv.DeviceVariable, args[++i]);
            break;
        case "--threads" when i + 1 < args.Length:
            torch.set_num_threads(int.Parse(args[++i], System.Globalization.CultureInfo.InvariantCulture));
            break;
        case "--memory-table" or "--check-iterative" or "--llama-block" or "--self-test" or "--paired-training":
            mode = args[i];
            break;
        case "--out-of-process":
            inProcess = false;
            break;
        default:
            rest.Add(args[i]);
            break;
    }
}

Console.WriteLine($"GuardSpace benchmarks: {BenchEnv.Describe()}");
switch (mode)
{
    case "--memory-table":
        MemoryTable.Run(rest);
        return 0;
    case "--check-iterative":
        return IterativeCheck.Run(rest);
    case "--llama-block":
        return LlamaBlockDecomposition.Run(rest);
    case "--self-test":
        return SelfTest.Run(rest);
    case "--paired-training":
        return PairedTraining.Run(rest);
}

if (inProcess && !rest.Contains("--inProcess"))
{
    rest.Add("--inProcess");
}

var config = ManualConfig.CreateEmpty()
    .AddColumnProvider(DefaultColumnProviders.Instance)
    .AddLogger(BenchmarkDotNet.Loggers.ConsoleLogger.Default)
    .AddDiagnoser(MemoryDiagnoser.Default)
    .AddExporter(CsvExporter.Default, MarkdownExporter.GitHub)
    .WithOrderer(new BenchmarkDotNet.Order.DefaultOrderer(BenchmarkDotNet.Order.SummaryOrderPolicy.Declared))
    .WithOptions(ConfigOptions.DisableLogFile);
var summaries = BenchmarkSwitcher.FromAssembly(typeof(BenchEnv).Assembly).Run(rest.ToArray(), config);
var informational = rest.Any(a => a is "--list" or "--help" or "-h" or "--info" or "--version");
if (!informational && summaries.Sum(s => s.Reports.Length) == 0)
{
    Console.Error.WriteLine("No benchmark ran: check --filter / --anyCategories.");
    return 2;
}

return summaries.Any(s => s.HasCriticalValidationErrors || s.Reports.Any(r => !r.Success)) ? 1 : 0;
