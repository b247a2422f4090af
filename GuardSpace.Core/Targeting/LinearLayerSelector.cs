using TorchSharp.Modules;
using static TorchSharp.torch.nn;

namespace GuardSpace.Targeting;

/// <summary>Finds the managed <see cref="TorchSharp.Modules.Linear"/> layers of a model that a <see cref="TargetModules"/> selects.</summary>
public static class LinearLayerSelector
{
    /// <summary>
    /// Returns the selected Linear layers in module order, with their dotted paths.
    /// Throws <see cref="ArgumentException"/> listing the Linear layers that exist when nothing matches,
    /// or when an exact name does not exist or is not a Linear layer.
    /// </summary>
    public static IReadOnlyList<(string Name, Linear Layer)> Select(Module model, TargetModules targets)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(targets);
        var modules = model.named_modules().ToList();
        var linears = modules.Where(m => m.module is Linear).Select(m => (m.name, (Linear)m.module)).ToList();
        var selected = linears.Where(l => targets.IsMatch(l.name)).ToList();

        if (targets.Kind == TargetMatchKind.ExactNames)
        {
            foreach (var name in targets.Patterns)
            {
                if (selected.Any(s => s.name == name))
                {
                    continue;
                }

                var found = modules.FirstOrDefault(m => m.name == name).module;
                var what = found is null ? "does not exist" : $"is a {found.GetType().Name}, not a managed TorchSharp Linear";
                throw new ArgumentException(
                    $"Target layer '{name}' {what}. {DescribeLinears(linears.Select(l => l.name))}", nameof(targets));
            }
        }

        if (selected.Count == 0)
        {
            throw new ArgumentException(
                $"The targets ({targets}) match no Linear layer of {model.GetType().Name}. {DescribeLinears(linears.Select(l => l.name))} " +
                "Native composite modules (TransformerEncoderLayer, MultiheadAttention) hold no managed Linear children and cannot be targeted.",
                nameof(targets));
        }

        return selected;
    }

    internal static string DescribeLinears(IEnumerable<string> names)
    {
        var list = names.ToList();
        if (list.Count == 0)
        {
            return "The model has no managed Linear layers.";
        }

        const int Shown = 40;
        var shown = string.Join(", ", list.Take(Shown));
        return $"Linear layers in the model: {shown}{(list.Count > Shown ? $", ... ({list.Count} in all)" : string.Empty)}.";
    }
}
