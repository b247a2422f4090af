// TEMPORARY STAND-IN. The GuardSpace.Core API (GuardedModel, GuardedLoraOptions, CalibrationData,
// ActivationCovarianceCollector, AsftRegularizer) is being written in parallel on main. Until it lands, this file
// provides the same names with a small, simplified implementation so that the demo compiles and runs against the
// API it will use. Delete this file when the library lands; nothing else in the demo should need to change.
// Simplifications versus design.md: one covariance per layer (no sharing), float64 decomposition, only the
// relative null-space threshold, empty null space always freezes the layer, no merge/export, no logging.
using System.Reflection;
using Module = TorchSharp.torch.nn.Module;
using GuardSpace.Adapters;
using GuardSpace.Collection;
using GuardSpace.Targeting;
using Microsoft.Extensions.Logging;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace GuardSpace.Adapters
{
    public enum InitializationMethod
    {
        Lora,
        PiSSA,
        MiLoRA,
        CorDAKpm,
        NullSpaceLora,
        GuardSpace,
    }

    public sealed class GuardedLoraOptions
    {
        public int Rank { get; set; } = 8;

        public InitializationMethod Method { get; set; } = InitializationMethod.GuardSpace;

        public TargetModules Targets { get; set; } = TargetModules.AllLinear();

        public double? Scale { get; set; }

        public long? Seed { get; set; }

        public void Validate()
        {
            if (Rank < 1)
            {
                throw new ArgumentOutOfRangeException(nameof(Rank), Rank, "Rank must be at least 1.");
            }
        }
    }

    public sealed class CalibrationData
    {
        public Action<ActivationCovarianceCollector>? RunSafetyPrompts { get; set; }

        public Action<ActivationCovarianceCollector>? RunHarmfulPrompts { get; set; }

        public CovarianceSet? SafetyCovariances { get; set; }

        public CovarianceSet? HarmfulCovariances { get; set; }
    }

    public sealed record AttachProgress(string Stage, int Completed, int Total);

    public sealed record LayerAttachReport(string Name, int InputWidth, int OutputWidth, int? NullDimension, double? Lambda, bool Frozen);

    public sealed class GuardedModel : IDisposable
    {
        private static readonly FieldInfo Submodules = typeof(Module).GetField("_internal_submodules", BindingFlags.NonPublic | BindingFlags.Instance)!;
        private readonly List<(string Name, StubAdapter Adapter)> adapters = [];
        private readonly List<LayerAttachReport> layers = [];

        private GuardedModel()
        {
        }

        public IReadOnlyList<LayerAttachReport> Layers => layers;

        internal IReadOnlyList<(string Name, StubAdapter Adapter)> Adapters => adapters;

        public static GuardedModel Attach(Module model, GuardedLoraOptions options, CalibrationData? calibration = null, ILoggerFactory? loggerFactory = null, IProgress<AttachProgress>? progress = null, CancellationToken ct = default)
        {
            options.Validate();
            _ = loggerFactory;
            if (options.Seed is long seed)
            {
                manual_seed(seed);
            }

            var targets = LinearLayerSelector.Select(model, options.Targets);
            foreach (var p in model.parameters())
            {
                p.requires_grad = false;
            }

            var method = options.Method;
            bool needCs = method is InitializationMethod.CorDAKpm or InitializationMethod.GuardSpace;
            bool needCh = method is InitializationMethod.NullSpaceLora or InitializationMethod.GuardSpace;
            var cs = needCs ? Collect(targets, calibration?.SafetyCovariances, calibration?.RunSafetyPrompts, "safety") : null;
            var ch = needCh ? Collect(targets, calibration?.HarmfulCovariances, calibration?.RunHarmfulPrompts, "harmful") : null;

            var guarded = new GuardedModel();
            int r = options.Rank;
            double scale = options.Scale ?? 1.0;
            int done = 0;
            foreach (var (name, lin) in targets)
            {
                ct.ThrowIfCancellationRequested();
                using var scope = NewDisposeScope();
                using var ng = no_grad();
                var w = lin.weight.detach().to(ScalarType.Float64);
                long m = w.shape[0], n = w.shape[1];
                Tensor a, b;
                double? lambda = null;
                Tensor? nullBasis = null;
                switch (method)
                {
                    case InitializationMethod.Lora:
                    case InitializationMethod.NullSpaceLora:
                        a = empty(r, n, dtype: ScalarType.Float64, device: w.device).uniform_(-1.0 / Math.Sqrt(n), 1.0 / Math.Sqrt(n));
                        b = zeros(m, r, dtype: ScalarType.Float64, device: w.device);
                        break;
                    case InitializationMethod.PiSSA:
                    case InitializationMethod.MiLoRA:
                        {
                            var (u, s, vh) = linalg.svd(w, fullMatrices: false);
                            var k = s.shape[0];
                            long start = method == InitializationMethod.PiSSA ? 0 : k - r;
                            var sq = s.narrow(0, start, r).sqrt();
                            b = u.narrow(1, start, r) * sq.unsqueeze(0);
                            a = sq.unsqueeze(1) * vh.narrow(0, start, r);
                            break;
                        }

                    default:
                        {
                            var (cl, l) = Damp(cs!.Covariances[name]);
                            lambda = l;
                            var (u, s, vh) = linalg.svd(w.matmul(cl), fullMatrices: false);
                            var k = s.shape[0];
                            var sq = s.narrow(0, k - r, r).sqrt();
                            var vhat = linalg.solve(cl, vh.narrow(0, k - r, r).T); // n x r = C^-1 V_r
                            b = u.narrow(1, k - r, r) * sq.unsqueeze(0);
                            a = sq.unsqueeze(1) * vhat.T;
                            break;
                        }
                }

                bool frozen = false;
                if (needCh)
                {
                    var (mu, q) = linalg.eigh(ch!.Covariances[name]);
                    var thr = Math.Max(1e-8, 1e-6 * mu.max().item<double>());
                    var keep = (mu <= thr).nonzero().squeeze(1);
                    nullBasis = q.index_select(1, keep);
                    frozen = nullBasis.shape[1] == 0;
                    a = a.matmul(nullBasis).matmul(nullBasis.T);
                }

                // Residual: W' = W - scale * B A, so that the guarded model starts as the same function.
                lin.weight.copy_((w - (scale * b.matmul(a))).to(lin.weight.dtype));
                var adapter = new StubAdapter(lin, a.to(lin.weight.dtype), b.to(lin.weight.dtype), scale, nullBasis?.to(lin.weight.dtype), frozen);
                Replace(model, name, adapter);
                guarded.adapters.Add((name, adapter));
                guarded.layers.Add(new LayerAttachReport(name, (int)n, (int)m, nullBasis is null ? null : (int)nullBasis.shape[1], lambda, frozen));
                progress?.Report(new AttachProgress("initialise", ++done, targets.Count));
            }

            cs?.Dispose();
            ch?.Dispose();
            return guarded;
        }

        public IReadOnlyList<Parameter> TrainableParameters() =>
            adapters.Where(x => !x.Adapter.Frozen).SelectMany(x => new[] { x.Adapter.LoraA, x.Adapter.LoraB }).ToList();

        public GuardedOptimizer WrapOptimizer(optim.Optimizer inner) => new(inner, this);

        /// <summary>grad(A) &lt;- grad(A) P for every projected adapter.</summary>
        public void AfterBackward()
        {
            using var ng = no_grad();
            using var scope = NewDisposeScope();
            foreach (var (_, ad) in adapters)
            {
                if (ad.NullBasis is { } nb && !ad.Frozen && ad.LoraA.grad is { } g)
                {
                    g.copy_(g.matmul(nb).matmul(nb.T));
                }
            }
        }

        /// <summary>A &lt;- A P for every projected adapter.</summary>
        public void AfterStep()
        {
            using var ng = no_grad();
            using var scope = NewDisposeScope();
            foreach (var (_, ad) in adapters)
            {
                if (ad.NullBasis is { } nb && !ad.Frozen)
                {
                    ad.LoraA.copy_(ad.LoraA.matmul(nb).matmul(nb.T));
                }
            }
        }

        public void Dispose()
        {
            foreach (var (_, ad) in adapters)
            {
                ad.NullBasis?.Dispose();
            }
        }

        private static CovarianceSet Collect(IReadOnlyList<(string Name, Linear Layer)> targets, CovarianceSet? given, Action<ActivationCovarianceCollector>? run, string what)
        {
            if (given is not null)
            {
                return given;
            }

            if (run is null)
            {
                throw new ArgumentException($"This method needs {what} calibration data: set CalibrationData.Run{(what == "safety" ? "Safety" : "Harmful")}Prompts.");
            }

            using var collector = new ActivationCovarianceCollector(targets);
            using (no_grad())
            {
                run(collector);
            }

            return collector.ToCovarianceSet();
        }

        private static (Tensor Damped, double Lambda) Damp(Tensor c)
        {
            var n = c.shape[0];
            var eye = torch.eye(n, dtype: ScalarType.Float64, device: c.device);
            var meanDiag = c.diagonal().mean().item<double>();
            double l = 0.01;
            while (true)
            {
                var cl = c + (eye * (l * meanDiag));
                var resid = linalg.norm(cl.matmul(linalg.solve(cl, eye)) - eye).item<double>();
                if (resid < 0.05 || l > 1e6)
                {
                    return (cl, l);
                }

                l *= 2;
            }
        }

        private static void Replace(Module root, string path, Module replacement)
        {
            var parts = path.Split('.');
            Module parent = root;
            for (int i = 0; i < parts.Length - 1; i++)
            {
                parent = parent.named_children().First(c => c.name == parts[i]).module;
            }

            var old = parent.named_children().First(c => c.name == parts[^1]).module;
            bool assigned = false;
            for (var t = parent.GetType(); t != null && t != typeof(object); t = t.BaseType)
            {
                foreach (var f in t.GetFields(BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.Instance | BindingFlags.DeclaredOnly))
                {
                    if (ReferenceEquals(f.GetValue(parent), old))
                    {
                        if (!f.FieldType.IsInstanceOfType(replacement))
                        {
                            throw new InvalidOperationException($"field {t.Name}.{f.Name} cannot hold an adapter");
                        }

                        f.SetValue(parent, replacement);
                        assigned = true;
                    }
                }
            }

            if (!assigned)
            {
                throw new InvalidOperationException($"no field holds '{path}'");
            }

            var reg = (TorchSharp.Utils.OrderedDict<string, Module>)Submodules.GetValue(parent)!;
            reg[parts[^1]] = replacement;
        }
    }

    public sealed class GuardedOptimizer : optim.Optimizer
    {
        private readonly optim.Optimizer inner;
        private readonly GuardedModel guarded;

        internal GuardedOptimizer(optim.Optimizer inner, GuardedModel guarded) : base(IntPtr.Zero)
        {
            this.inner = inner;
            this.guarded = guarded;
        }

        public override Tensor step(Func<Tensor>? closure = null)
        {
            guarded.AfterBackward();
            var loss = inner.step(closure);
            guarded.AfterStep();
            return loss;
        }

        public override void zero_grad() => inner.zero_grad();

        public override IEnumerable<Parameter> parameters() => inner.parameters();

        public override IEnumerable<optim.ILearningRateController> ParamGroups => inner.ParamGroups;

        protected override void Dispose(bool disposing)
        {
            if (disposing)
            {
                inner.Dispose();
            }

            base.Dispose(disposing);
        }
    }

    internal sealed class StubAdapter : Module<Tensor, Tensor>
    {
        private readonly Linear base_layer;
        private readonly Parameter lora_A;
        private readonly Parameter lora_B;
        private readonly double scale;

        public StubAdapter(Linear baseLayer, Tensor a, Tensor b, double scale, Tensor? nullBasis, bool frozen) : base(nameof(StubAdapter))
        {
            base_layer = baseLayer;
            lora_A = new Parameter(a.contiguous().clone().DetachFromDisposeScope(), requires_grad: !frozen);
            lora_B = new Parameter(b.contiguous().clone().DetachFromDisposeScope(), requires_grad: !frozen);
            this.scale = scale;
            NullBasis = nullBasis?.contiguous().clone().DetachFromDisposeScope();
            Frozen = frozen;
            RegisterComponents();
        }

        public Parameter LoraA => lora_A;

        public Parameter LoraB => lora_B;

        public Tensor? NullBasis { get; }

        public bool Frozen { get; }

        public override Tensor forward(Tensor x)
        {
            using var scope = NewDisposeScope();
            var y = base_layer.call(x) + (functional.linear(functional.linear(x, lora_A), lora_B) * scale);
            return y.MoveToOuterDisposeScope();
        }
    }
}

namespace GuardSpace.Collection
{
    public sealed class CovarianceSet : IDisposable
    {
        public CovarianceSet(Dictionary<string, Tensor> covariances, long tokens)
        {
            Covariances = covariances;
            Tokens = tokens;
        }

        public IReadOnlyDictionary<string, Tensor> Covariances { get; }

        public long Tokens { get; }

        public void Dispose()
        {
            foreach (var t in Covariances.Values)
            {
                t.Dispose();
            }
        }
    }

    /// <summary>Accumulates sum x x^T (float64) of every target layer's input, each prompt scaled by its largest |x|, padding masked.</summary>
    public sealed class ActivationCovarianceCollector : IDisposable
    {
        private readonly Dictionary<string, Tensor> sums = new(StringComparer.Ordinal);
        private readonly List<IDisposable> hooks = [];
        private Tensor? mask;
        private long tokens;

        internal ActivationCovarianceCollector(IReadOnlyList<(string Name, Linear Layer)> layers)
        {
            foreach (var (name, lin) in layers)
            {
                sums[name] = zeros(lin.in_features, lin.in_features, dtype: ScalarType.Float64, device: lin.weight.device).DetachFromDisposeScope();
                var key = name;
                var remover = lin.register_forward_hook((mod, input, output) =>
                {
                    Add(key, input);
                    return null!;
                });
                hooks.Add(new Remover(remover.remove));
            }
        }

        public void SetTokenMask(Tensor? tokenMask)
        {
            mask = tokenMask;
            if (tokenMask is not null)
            {
                tokens += (long)tokenMask.sum().item<float>();
            }
        }

        public void Dispose()
        {
            foreach (var h in hooks)
            {
                h.Dispose();
            }

            hooks.Clear();
        }

        internal CovarianceSet ToCovarianceSet() => new(new Dictionary<string, Tensor>(sums), tokens);

        private void Add(string name, Tensor input)
        {
            using var ng = no_grad();
            using var scope = NewDisposeScope();
            var x = input.detach().to(ScalarType.Float64);
            if (mask is not null)
            {
                x = x * mask.to(ScalarType.Float64).unsqueeze(-1);
            }

            var s = x.abs().amax([1, 2], keepdim: true).clamp_min(1e-12);
            x = (x / s).reshape(-1, x.shape[^1]);
            sums[name].addmm_(x.T, x);
        }

        private sealed class Remover(Action remove) : IDisposable
        {
            public void Dispose() => remove();
        }
    }
}

namespace GuardSpace.Training
{
    /// <summary>AsFT's penalty lambda * sum ||(I - C^) dW||_F^2, C^ = V V^T / ||V||_F, V = W_aligned - W_base, dW = scale * B A.</summary>
    public sealed class AsftRegularizer : IDisposable
    {
        private readonly List<(StubAdapter Adapter, Tensor C)> terms = [];
        private readonly double lambda;

        public AsftRegularizer(GuardedModel guarded, IReadOnlyDictionary<string, Tensor> baseWeights, IReadOnlyDictionary<string, Tensor> alignedWeights, double lambda)
        {
            this.lambda = lambda;
            foreach (var (name, ad) in guarded.Adapters)
            {
                using var scope = NewDisposeScope();
                var v = (alignedWeights[name] - baseWeights[name]).to(ScalarType.Float64);
                var c = (v.matmul(v.T) / linalg.norm(v).clamp_min(1e-12)).to(ad.LoraA.dtype).to(ad.LoraA.device);
                terms.Add((ad, c.DetachFromDisposeScope()));
            }
        }

        public Tensor Penalty()
        {
            using var scope = NewDisposeScope();
            Tensor? total = null;
            foreach (var (ad, c) in terms)
            {
                if (ad.Frozen)
                {
                    continue;
                }

                var d = ad.LoraB.matmul(ad.LoraA);
                var res = d - c.matmul(d);
                var term = res.pow(2).sum();
                total = total is null ? term : total + term;
            }

            return ((total ?? zeros(1, device: terms[0].C.device)) * lambda).MoveToOuterDisposeScope();
        }

        public void Dispose()
        {
            foreach (var (_, c) in terms)
            {
                c.Dispose();
            }
        }
    }
}
