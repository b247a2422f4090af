using TorchSharp.Modules;
using static TorchSharp.torch;

namespace GuardSpace.Demo;

public sealed record SpectrumData(string Layer, double[] SingularValues, int Rank, double Damping, long Tokens);

/// <summary>
/// The singular-value spectrum of W C_s for one layer of the aligned model, computed by the demo itself (a forward
/// hook, the safety-calibration prompts, each prompt scaled by its largest |x| as the library's default does,
/// damping 0.01 x mean(diag C_s)). GuardSpace keeps the large components frozen and trains the r smallest.
/// </summary>
public static class Spectrum
{
    public static SpectrumData? Compute(TorchSharp.torch.nn.Module<Tensor, Tensor> model, DemoData data, Device device, string layerPath, int rank)
    {
        var lin = model.named_modules().Where(m => m.name == layerPath).Select(m => m.module).OfType<Linear>().FirstOrDefault();
        if (lin is null)
        {
            return null;
        }

        using var scope = NewDisposeScope();
        using var ng = no_grad();
        var n = lin.in_features;
        var c = zeros(n, n, dtype: ScalarType.Float64, device: device);
        Tensor? mask = null;
        long tokens = 0;
        var hook = lin.register_forward_hook((m, input, output) =>
        {
            using var inner = NewDisposeScope();
            var x = input.detach().to(ScalarType.Float64) * mask!.to(ScalarType.Float64).unsqueeze(-1);
            x = x / x.abs().amax([1, 2], keepdim: true).clamp_min(1e-12);
            var flat = x.reshape(-1, n);
            c.addmm_(flat.T, flat);
            return null!;
        });
        model.eval();
        foreach (var chunk in data.SafetyCalibration.Chunk(64))
        {
            var (ids, m) = data.EncodePrompts(chunk, device);
            mask = m;
            tokens += (long)m.sum().item<float>();
            model.call(ids);
        }

        hook.remove();
        model.train();
        const double damping = 0.01;
        var cl = c + (eye(n, dtype: ScalarType.Float64, device: device) * (damping * c.diagonal().mean().item<double>()));
        var s = linalg.svdvals(lin.weight.detach().to(ScalarType.Float64).matmul(cl)).cpu();
        return new SpectrumData(layerPath, s.data<double>().ToArray(), rank, damping, tokens);
    }
}
