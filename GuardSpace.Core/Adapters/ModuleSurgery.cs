using System.Reflection;
using TorchSharp.Modules;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;
using Module = TorchSharp.torch.nn.Module;

namespace GuardSpace.Adapters;

/// <summary>
/// Replaces a child module in place. TorchSharp keeps children in two places: the parent's C# fields (read by forward)
/// and a registry (read by parameters(), state_dict, .to(), train()). Both must change. Every change returns an undo
/// action so an attachment can roll back completely.
/// </summary>
internal static class ModuleSurgery
{
    private const BindingFlags Instance = BindingFlags.Instance | BindingFlags.Public | BindingFlags.NonPublic;
    private static readonly FieldInfo Registry = typeof(Module).GetField("_internal_submodules", Instance)
        ?? throw new MissingFieldException("TorchSharp's Module._internal_submodules was not found: this TorchSharp version is not supported by GuardSpace.");

    private static readonly FieldInfo SequentialModules = typeof(Sequential).GetField("_modules", Instance)
        ?? throw new MissingFieldException("TorchSharp's Sequential._modules was not found: this TorchSharp version is not supported by GuardSpace.");

    private static readonly FieldInfo SequentialNames = typeof(Sequential).GetField("_names", Instance)
        ?? throw new MissingFieldException("TorchSharp's Sequential._names was not found: this TorchSharp version is not supported by GuardSpace.");

    /// <summary>Finds the parent of the module at <paramref name="path"/> and the child's name in it.</summary>
    public static (Module Parent, string ChildName) ResolveParent(Module root, string path)
    {
        var parts = path.Split('.');
        var current = root;
        for (var i = 0; i < parts.Length - 1; i++)
        {
            current = current.named_children().First(c => c.name == parts[i]).module;
        }

        return (current, parts[^1]);
    }

    /// <summary>
    /// True when <paramref name="parent"/> can hold a <paramref name="replacementType"/> in place of its child <paramref name="childName"/>
    /// (Sequential, ModuleList/ModuleDict of a compatible element type, or fields typed to accept it).
    /// False means a forward hook is needed instead (for example a field declared as the sealed <c>Linear</c>).
    /// </summary>
    public static bool CanReplace(Module parent, string childName, Module old, Type replacementType)
    {
        if (parent is Sequential)
        {
            return true;
        }

        var type = parent.GetType();
        if (IsModuleCollection(type, out var element))
        {
            return element.IsAssignableFrom(replacementType);
        }

        var fields = FieldsHolding(parent, old).ToList();
        return fields.Count > 0 && fields.All(f => f.FieldType.IsAssignableFrom(replacementType));
    }

    /// <summary>Replaces the child and returns the action that restores it.</summary>
    public static Action Replace(Module parent, string childName, Module old, Module replacement)
    {
        if (parent is Sequential sequential)
        {
            var list = (List<IModule<Tensor, Tensor>>)SequentialModules.GetValue(sequential)!;
            var names = (List<string>)SequentialNames.GetValue(sequential)!;
            var index = names.IndexOf(childName);
            list[index] = (IModule<Tensor, Tensor>)replacement;
            return () => list[index] = (IModule<Tensor, Tensor>)old;
        }

        var registry = (TorchSharp.Utils.OrderedDict<string, Module>)Registry.GetValue(parent)!;
        var type = parent.GetType();
        Action restoreHolder;
        if (IsModuleCollection(type, out _))
        {
            var isList = type.GetGenericTypeDefinition() == typeof(ModuleList<>);
            object key = isList ? int.Parse(childName, System.Globalization.CultureInfo.InvariantCulture) : childName;
            var indexer = type.GetProperty("Item", [key.GetType()])!;
            indexer.SetValue(parent, replacement, [key]);
            restoreHolder = () => indexer.SetValue(parent, old, [key]);
        }
        else
        {
            var fields = FieldsHolding(parent, old).ToList();
            foreach (var field in fields)
            {
                field.SetValue(parent, replacement);
            }

            restoreHolder = () => fields.ForEach(f => f.SetValue(parent, old));
        }

        registry[childName] = replacement;
        return () =>
        {
            restoreHolder();
            registry[childName] = old;
        };
    }

    /// <summary>Registers <paramref name="module"/> as a new child of <paramref name="parent"/>; returns the undo action.</summary>
    public static Action RegisterBeside(Module parent, string name, Module module)
    {
        if (parent is Sequential)
        {
            throw new InvalidOperationException($"Cannot register '{name}' beside a Sequential's children.");
        }

        parent.register_module(name, module);
        return () => parent.register_module(name, null!);
    }

    private static bool IsModuleCollection(Type type, out Type element)
    {
        for (var t = type; t is not null && t != typeof(object); t = t.BaseType)
        {
            if (t.IsGenericType && (t.GetGenericTypeDefinition() == typeof(ModuleList<>) || t.GetGenericTypeDefinition() == typeof(ModuleDict<>)))
            {
                element = t.GetGenericArguments()[0];
                return true;
            }
        }

        element = typeof(object);
        return false;
    }

    private static IEnumerable<FieldInfo> FieldsHolding(Module parent, Module child)
    {
        for (var t = parent.GetType(); t is not null && t != typeof(Module) && t != typeof(object); t = t.BaseType)
        {
            foreach (var field in t.GetFields(Instance | BindingFlags.DeclaredOnly))
            {
                if (!field.FieldType.IsValueType && ReferenceEquals(field.GetValue(parent), child))
                {
                    yield return field;
                }
            }
        }
    }
}
