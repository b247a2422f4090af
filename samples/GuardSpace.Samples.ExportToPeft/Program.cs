// Fine-tune with GuardSpace, then export the result as a plain PEFT LoRA adapter (adapter_model.safetensors +
// adapter_config.json) that any LoRA runtime can apply to the ORIGINAL model. The sample lists the files and tensor
// keys, prints adapter_config.json, and checks the export: it reads the safetensors file with a few lines of its own,
// adds B A to the original weights of a fresh copy of the model and compares its outputs with the fine-tuned model's.
// It also saves GuardSpace's own format (guardspace_adapter.safetensors + guardspace_config.json), which
// GuardedModel.Load reads back. Exits with 1 if a check fails.
using System.Buffers.Binary;
using System.Text;
using System.Text.Json;
using GuardSpace;
using GuardSpace.Adapters;
using GuardSpace.Serialization;
using TorchSharp;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

static TorchSharp.Modules.Sequential MakeModel()
{
    manual_seed(3); // the same seed gives the same original weights
    return Sequential(
        ("embed", Embedding(32, 16, dtype: ScalarType.Float64)),
        ("up", Linear(16, 32, dtype: ScalarType.Float64)),
        ("act", GELU()),
        ("down", Linear(32, 16, dtype: ScalarType.Float64)),
        ("lm_head", Linear(16, 32, dtype: ScalarType.Float64)));
}

var model = MakeModel();
var harmful = randint(0, 32, [2, 6], generator: new Generator(10));
var safety = randint(0, 32, [4, 6], generator: new Generator(11));
using var guarded = GuardedModel.Attach(model, new GuardedLoraOptions { Rank = 4 }, new CalibrationData
{
    RunSafetyPrompts = _ => model.call(safety).Dispose(),
    RunHarmfulPrompts = _ => model.call(harmful).Dispose(),
});
using (var optimizer = guarded.WrapOptimizer(optim.Adam(guarded.TrainableParameters(), 1e-2)))
{
    for (var step = 0; step < 20; step++)
    {
        using var scope = NewDisposeScope();
        var g = new Generator((ulong)(100 + step));
        var (x, y) = (randint(0, 32, [8, 6], generator: g), randint(0, 32, [8, 6], generator: g));
        optimizer.zero_grad();
        functional.cross_entropy(model.call(x).reshape(-1, 32), y.reshape(-1)).backward();
        optimizer.step();
    }
}

var root = Directory.CreateTempSubdirectory("guardspace-export-sample-").FullName;
var peftDir = Path.Combine(root, "peft");
var ownDir = Path.Combine(root, "guardspace");
guarded.ExportPeft(peftDir);
guarded.Save(ownDir);

foreach (var dir in new[] { peftDir, ownDir })
{
    Console.WriteLine($"{dir}:");
    foreach (var file in Directory.GetFiles(dir).Order(StringComparer.Ordinal))
    {
        Console.WriteLine($"  {Path.GetFileName(file)} ({new FileInfo(file).Length} bytes)");
        if (file.EndsWith(".safetensors", StringComparison.Ordinal))
        {
            foreach (var (key, (dtype, shape, _)) in SafetensorsReader.Read(file).OrderBy(t => t.Key, StringComparer.Ordinal))
            {
                Console.WriteLine($"    {key} {dtype} [{string.Join(", ", shape)}]");
            }
        }
    }
}

Console.WriteLine($"{AdapterFiles.PeftConfigFile}:");
Console.WriteLine(File.ReadAllText(Path.Combine(peftDir, AdapterFiles.PeftConfigFile)));

// Check: original weights + B A reproduce the fine-tuned model.
var probe = randint(0, 32, [4, 6], generator: new Generator(12));
var fineTuned = model.call(probe).detach();
var fresh = MakeModel();
var exported = SafetensorsReader.Read(Path.Combine(peftDir, AdapterFiles.PeftWeightsFile));
using (no_grad())
{
    foreach (var (name, module) in fresh.named_modules())
    {
        if (module is TorchSharp.Modules.Linear linear && exported.TryGetValue($"{AdapterFiles.PeftKeyPrefix}{name}.lora_A.weight", out var a))
        {
            var b = exported[$"{AdapterFiles.PeftKeyPrefix}{name}.lora_B.weight"];
            linear.weight!.add_(tensor(b.Values, b.Shape).matmul(tensor(a.Values, a.Shape)));  // scaling = lora_alpha / r = 1
        }
    }
}

var error = (fresh.call(probe) - fineTuned).norm().item<double>() / fineTuned.norm().item<double>();
Console.WriteLine($"original weights + exported B A vs the fine-tuned model: relative error {error:G3}");

// GuardSpace's own format loads back onto a fresh original model and gives the same outputs.
var reloaded = MakeModel();
using var loaded = GuardedModel.Load(reloaded, ownDir);
var reloadError = (reloaded.call(probe) - fineTuned).norm().item<double>() / fineTuned.norm().item<double>();
Console.WriteLine($"GuardedModel.Load on the original model vs the fine-tuned model: relative error {reloadError:G3}");

Console.WriteLine($"{AdapterFiles.ConfigFile}:");
Console.WriteLine(File.ReadAllText(Path.Combine(ownDir, AdapterFiles.ConfigFile)));
Directory.Delete(root, recursive: true);
var ok = error <= 1e-10 && reloadError <= 1e-10;
Console.WriteLine(ok ? "OK" : "FAILED");
return ok ? 0 : 1;

/// <summary>
/// A minimal safetensors reader for this sample (float64 only): an 8-byte little-endian header length, a JSON header
/// mapping each key to its dtype, shape and byte range, then the raw little-endian data.
/// </summary>
internal static class SafetensorsReader
{
    public static Dictionary<string, (string Dtype, long[] Shape, double[] Values)> Read(string path)
    {
        var bytes = File.ReadAllBytes(path);
        var headerLength = checked((int)BinaryPrimitives.ReadUInt64LittleEndian(bytes));
        using var header = JsonDocument.Parse(Encoding.UTF8.GetString(bytes, 8, headerLength));
        var result = new Dictionary<string, (string, long[], double[])>(StringComparer.Ordinal);
        foreach (var entry in header.RootElement.EnumerateObject())
        {
            if (entry.Name == "__metadata__")
            {
                continue;
            }

            var dtype = entry.Value.GetProperty("dtype").GetString()!;
            var shape = entry.Value.GetProperty("shape").EnumerateArray().Select(d => d.GetInt64()).ToArray();
            var offsets = entry.Value.GetProperty("data_offsets").EnumerateArray().Select(o => o.GetInt64()).ToArray();
            var values = dtype == "F64"
                ? Enumerable.Range(0, (int)((offsets[1] - offsets[0]) / 8))
                    .Select(i => BinaryPrimitives.ReadDoubleLittleEndian(bytes.AsSpan(8 + headerLength + (int)offsets[0] + (8 * i))))
                    .ToArray()
                : [];
            result[entry.Name] = (dtype, shape, values);
        }

        return result;
    }
}
