using GuardSpace.Adapters;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace GuardSpace.Tests.TestUtilities;

/// <summary>
/// Everything about a model that "left exactly as it was" promises: the module objects at every path, every parameter's
/// bits, dtype and device, and every requires_grad flag.
/// </summary>
internal sealed class ModelState
{
    private readonly List<(string Name, Module Module)> _modules;
    private readonly Dictionary<string, Tensor> _values;
    private readonly Dictionary<string, bool> _flags;

    private ModelState(Module model)
    {
        _modules = [.. model.named_modules().Select(m => (m.name, m.module))];
        _values = model.named_parameters().ToDictionary(p => p.name, p => p.parameter.detach().clone().DetachFromDisposeScope());
        _flags = model.named_parameters().ToDictionary(p => p.name, p => p.parameter.requires_grad);
    }

    public static ModelState Of(Module model) => new(model);

    /// <summary>Asserts that <paramref name="model"/> has the same modules (by reference), parameter bits and flags.</summary>
    public void AssertSame(Module model)
    {
        Assert.Equal(_modules.Select(m => m.Name), model.named_modules().Select(m => m.name));
        foreach (var ((name, expected), (_, actual)) in _modules.Zip(model.named_modules()))
        {
            Assert.True(ReferenceEquals(expected, actual), $"module '{name}' is another object");
        }

        Assert.All(model.named_modules(), m => Assert.IsNotType<GuardedLoraAdapter>(m.module));
        var parameters = model.named_parameters().ToDictionary(p => p.name, p => p.parameter);
        Assert.Equal(_values.Keys.Order(), parameters.Keys.Order());
        foreach (var (name, value) in _values)
        {
            var now = parameters[name].detach();
            Assert.Equal(value.dtype, now.dtype);
            Assert.True(BitEqual(value, now), $"parameter '{name}' changed");
            Assert.Equal(_flags[name], parameters[name].requires_grad);
        }
    }

    /// <summary>True when both tensors hold the same bits (NaN payloads and signed zeros included).</summary>
    public static bool BitEqual(Tensor a, Tensor b)
    {
        using var scope = NewDisposeScope();
        if (!a.shape.SequenceEqual(b.shape) || a.dtype != b.dtype)
        {
            return false;
        }

        var x = a.cpu().contiguous();
        var y = b.cpu().contiguous();
        return x.bytes.SequenceEqual(y.bytes);
    }
}
