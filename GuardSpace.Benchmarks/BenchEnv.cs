using TorchSharp;
using static TorchSharp.torch;

namespace GuardSpace.Benchmarks;

/// <summary>
/// Where the benchmarks run. The device comes from <c>--device cpu|cuda</c> (Program.cs copies it into the
/// environment variable <see cref="DeviceVariable"/> so that in-process and out-of-process runs see it alike).
/// </summary>
public static class BenchEnv
{
    public const string DeviceVariable = "GUARDSPACE_BENCH_DEVICE";

    private static Device? _device;

    public static Device Device => _device ??= Resolve();

    public static bool IsCuda => Device.type == DeviceType.CUDA;

    private static Device Resolve()
    {
        var name = Environment.GetEnvironmentVariable(DeviceVariable);
        if (string.IsNullOrWhiteSpace(name) || name.Equals("cpu", StringComparison.OrdinalIgnoreCase))
        {
            return torch.CPU;
        }

        if (!name.StartsWith("cuda", StringComparison.OrdinalIgnoreCase))
        {
            throw new ArgumentException($"{DeviceVariable}={name}: expected 'cpu' or 'cuda' (or 'cuda:N').");
        }

        torch.InitializeDeviceType(DeviceType.CUDA);
        if (!torch.cuda.is_available())
        {
            throw new InvalidOperationException($"{DeviceVariable}={name} but torch.cuda.is_available() is false: libtorch_cuda was not found or no GPU is visible.");
        }

        return torch.device(name.ToLowerInvariant());
    }

    /// <summary>Waits for queued GPU work so that a benchmark's time covers it. No-op on CPU.</summary>
    public static void Sync()
    {
        if (IsCuda)
        {
            torch.cuda.synchronize();
        }
    }

    /// <summary>A generator seeded deterministically, on the CPU (inputs are drawn there, then moved).</summary>
    public static Generator Seeded(long seed) => new((ulong)seed, torch.CPU);

    public static string Describe()
    {
        var d = Device;
        var cuda = d.type == DeviceType.CUDA ? $" ({torch.cuda.device_count()} CUDA device(s))" : string.Empty;
        return $"device={d}{cuda}; TorchSharp {typeof(torch).Assembly.GetName().Version} (libtorch {torch.__version__}); " +
               $"torch threads={torch.get_num_threads()} interop={torch.get_num_interop_threads()}; ProcessorCount={Environment.ProcessorCount}; " +
               $".NET {Environment.Version}; {System.Runtime.InteropServices.RuntimeInformation.OSDescription}";
    }
}
