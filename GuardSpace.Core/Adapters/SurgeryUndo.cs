using TorchSharp.Modules;
using static TorchSharp.torch.nn;

namespace GuardSpace.Adapters;

/// <summary>
/// The undo log of an attachment's surgery: one action per change (a replaced child, a registered adapter, a hook, an
/// overwritten weight), the layers that were replaced, and every parameter's <c>requires_grad</c> flag before the surgery.
/// A failed attachment runs it at once; <see cref="GuardedModel.Detach"/> runs it later to give the original model back.
/// Flags are kept by parameter name, because <c>.to()</c> replaces parameter objects.
/// </summary>
internal sealed class SurgeryUndo
{
    private readonly Stack<Action> _actions = new();
    private readonly List<(string Name, bool RequiresGrad)> _flags;
    private readonly List<(Linear Original, GuardedLoraAdapter Adapter)> _replaced = [];

    public SurgeryUndo(Module model)
    {
        _flags = [.. model.named_parameters().Select(p => (p.name, p.parameter.requires_grad))];
    }

    /// <summary>The Linear layers that adapters replaced, with their adapters, in surgery order.</summary>
    public IReadOnlyList<(Linear Original, GuardedLoraAdapter Adapter)> Replaced => _replaced;

    public void Push(Action undo) => _actions.Push(undo);

    public void RecordReplaced(Linear original, GuardedLoraAdapter adapter) => _replaced.Add((original, adapter));

    /// <summary>
    /// Runs every undo action, latest first, then <paramref name="repair"/> (if any), then restores the flags of every
    /// parameter that exists again under its old name.
    /// </summary>
    public void Undo(Module model, Action? repair = null)
    {
        while (_actions.Count > 0)
        {
            _actions.Pop()();
        }

        repair?.Invoke();
        var current = model.named_parameters().ToDictionary(p => p.name, p => p.parameter, StringComparer.Ordinal);
        foreach (var (name, requiresGrad) in _flags)
        {
            if (current.TryGetValue(name, out var parameter))
            {
                parameter.requires_grad = requiresGrad;
            }
        }
    }
}
