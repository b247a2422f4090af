using Spectre.Console;
using TorchSharp;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace GuardSpace.Demo;

/// <summary>--diagnose: each guarded layer's relative output change on the null-set, held-out harmful and task prompts.</summary>
public static class ProbeDiagnosis
{
    /// <summary>Inputs of every guarded Linear on three probe sets, captured on the aligned model before attach, with its weights.</summary>
    public static Dictionary<string, (Tensor W, Dictionary<string, Tensor> X)> Capture(DemoContext demo, Module<Tensor, Tensor> model)
    {
        var sets = new Dictionary<string, (IReadOnlyList<string> Prompts, string? Answer)>
        {
            ["null set"] = (demo.Data.NullSpacePrompts.Take(128).ToList(), Language.Refusal),
            ["held-out harmful"] = (demo.Data.HarmfulEval.Take(128).Select(e => e.Prompt).ToList(), Language.Refusal),
            ["task"] = (demo.Data.TaskEval.Take(128).Select(e => e.Prompt).ToList(), null),
        };
        var result = new Dictionary<string, (Tensor W, Dictionary<string, Tensor> X)>(StringComparer.Ordinal);
        var linears = model.named_modules().Where(m => m.module is TorchSharp.Modules.Linear && !m.name.EndsWith("lm_head", StringComparison.Ordinal)).ToList();
        foreach (var (name, module) in linears)
        {
            result[name] = (((TorchSharp.Modules.Linear)module).weight!.detach().clone().DetachFromDisposeScope(), new Dictionary<string, Tensor>(StringComparer.Ordinal));
        }

        using var ng = no_grad();
        model.eval();
        foreach (var (set, (prompts, answer)) in sets)
        {
            Tensor? mask = null;
            var hooks = linears.Select(l => ((TorchSharp.Modules.Linear)l.module).register_forward_hook((_, x, _) =>
            {
                var rows = x.reshape(-1, x.shape[^1]).index_select(0, mask!.reshape(-1).nonzero().squeeze(1));
                result[l.name].X[set] = rows.detach().clone().DetachFromDisposeScope();
                return null!;
            })).ToList();
            using (var scope = NewDisposeScope())
            {
                var (ids, m) = demo.Data.EncodePrompts(prompts, demo.Device, answer);
                mask = m;
                model.call(ids);
            }

            hooks.ForEach(h => h.remove());
        }

        model.train();
        return result;
    }

    public static void Print(AttackMethod method, GuardedModel guarded, Dictionary<string, (Tensor W, Dictionary<string, Tensor> X)> probes)
    {
        using var scope = NewDisposeScope();
        using var ng = no_grad();
        guarded.Merge();
        var lines = new List<string>();
        var totals = new Dictionary<string, List<double>>(StringComparer.Ordinal);
        foreach (var a in guarded.Adapters.Values)
        {
            var (w, xs) = probes[a.LayerName];
            var dw = a.FrozenWeight - w;
            var parts = new List<string>();
            foreach (var (set, x) in xs)
            {
                var rel = dw.matmul(x.T).norm().ToDouble() / w.matmul(x.T).norm().ToDouble();
                parts.Add($"{set} {rel:G2}");
                (totals.TryGetValue(set, out var l) ? l : totals[set] = []).Add(rel);
            }

            lines.Add($"    {a.LayerName}: {string.Join(", ", parts)}");
        }

        guarded.Unmerge();
        AnsiConsole.MarkupLine(Markup.Escape($"  {method.Name}: relative output change per layer (rms over layers: {string.Join(", ", totals.Select(t => $"{t.Key} {Math.Sqrt(t.Value.Average(v => v * v)):G3}"))})"));
        foreach (var line in lines)
        {
            AnsiConsole.MarkupLine(Markup.Escape(line));
        }
    }
}
