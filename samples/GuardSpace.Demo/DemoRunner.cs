using System.Diagnostics;
using Spectre.Console;
using static TorchSharp.torch;

namespace GuardSpace.Demo;

/// <summary>
/// The demo's pipeline: pre-train and align (<see cref="BaseModels"/>), attack with every method on every scenario
/// (<see cref="AttackRunner"/>), then the tables, report.json and charts (<see cref="DemoOutputs"/>).
/// </summary>
public sealed class DemoRunner(DemoOptions options)
{
    private readonly DemoContext demo = new(options);

    /// <summary>Runs everything; the exit code is 1 when a method trained nothing and --allow-frozen was not given.</summary>
    public int Run()
    {
        var o = demo.Options;
        var total = Stopwatch.StartNew();
        Directory.CreateDirectory(o.Out);
        AnsiConsole.MarkupLine($"[bold]GuardSpace demo[/] device={demo.Device.type} threads={get_num_threads()} vocab={demo.Language.VocabSize} width={o.Width} layers={o.Layers} heads={o.Heads} mlp={o.Mlp}{(o.Quick ? " [yellow](quick smoke run)[/]" : string.Empty)}");
        AnsiConsole.MarkupLine($"attack: {o.TrainSize} items, poison {o.Poison:P0}, rank {o.Rank}, {o.AttackSteps} steps, Adam lr {o.AttackLr}, batch {o.Batch}, seeds {o.Seeds}; null set {o.NullSet.ToString().ToLowerInvariant()}{(o.NullSetAnswers ? " (prompts + refusals)" : " (prompts only)")}; family {o.Family.ToString().ToLowerInvariant()}");

        BaseModels bases = null!;
        var scenarios = new List<ScenarioResult>();
        var methods = (o.Methods ?? AttackMethod.Defaults).Select(m => AttackMethod.Parse(m, o.AsftLambda)).ToList();
        AnsiConsole.Progress()
            .AutoClear(false)
            .HideCompleted(false)
            .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new ElapsedTimeColumn(), new RemainingTimeColumn())
            .Start(ctx =>
            {
                bases = BaseModels.Build(demo, ctx);

                // Stage 3: the attacks, every method with the same data, steps, optimizer and seeds.
                var attacks = new AttackRunner(demo, bases);
                foreach (var scenario in o.Attacks)
                {
                    scenarios.Add(RunScenario(attacks, scenario, methods, ctx));
                }
            });

        demo.Timings["total_seconds"] = total.Elapsed.TotalSeconds;
        bases.Dispose();
        DemoOutputs.Write(demo, bases, scenarios);
        return FrozenMethods.Check(o, scenarios);
    }

    private ScenarioResult RunScenario(AttackRunner attacks, AttackScenario scenario, List<AttackMethod> methods, ProgressContext ctx)
    {
        var o = demo.Options;
        var sr = new ScenarioResult(scenario, []);
        var tasks = methods.Select(m => ctx.AddTask($"{scenario.ToString().ToLowerInvariant()}: {Markup.Escape(m.Name)}", maxValue: o.Seeds * o.AttackSteps)).ToList();
        foreach (var (method, task) in methods.Zip(tasks))
        {
            var mr = new MethodResult(method, [], [], 0);
            for (var s = 0; s < o.Seeds; s++)
            {
                var (res, layers, trainable) = attacks.Run(method, scenario, seed: 1000 + s, task, s * o.AttackSteps);
                mr.Seeds.Add(res);
                if (s == 0)
                {
                    mr.Layers.AddRange(layers);
                    mr = mr with { TrainableParameters = trainable };
                }
            }

            task.Value = task.MaxValue;
            sr.Methods.Add(mr);
            AnsiConsole.MarkupLine($"{scenario.ToString().ToLowerInvariant(),-8} {Markup.Escape(method.Name),-15} harmful {Stats.Mean(mr.Seeds.Select(x => x.HarmfulScore)),5:F1}%  accuracy {Stats.Mean(mr.Seeds.Select(x => x.Accuracy)),5:F1}%  ({Stats.Mean(mr.Seeds.Select(x => x.Seconds)):F1} s per seed)");
        }

        return sr;
    }
}
