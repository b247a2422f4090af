using GuardSpace.Internal;
using GuardSpace.Projection;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace GuardSpace.Adapters;

/// <summary>
/// A guarded LoRA layer: <c>y = W' x + b + s B (A x)</c> with a frozen residual <c>W'</c> (and frozen bias), trainable
/// <c>A</c> (r x n) and <c>B</c> (m x r), and optionally a null-space projector shared with the other layers that read
/// the same input. The forward pass is plain LoRA; the projector is applied by the optimizer hook
/// (<see cref="GuardedModel.AfterBackward"/> / <see cref="GuardedModel.AfterStep"/>), never per token.
/// It replaces a target <see cref="TorchSharp.Modules.Linear"/> in the model; when the Linear cannot be replaced (a field typed
/// <c>Linear</c>), the Linear keeps <c>W'</c> and this module adds its delta through a forward hook.
/// </summary>
public sealed class GuardedLoraAdapter : Module<Tensor, Tensor>
{
    // Field names are the state-dict keys (TorchSharp registers fields by name).
#pragma warning disable IDE1006, SA1300 // PyTorch-style names keep state-dict keys familiar
    private Parameter? weight;
    private Parameter? bias;
    private Parameter lora_A;
    private Parameter lora_B;
    private Tensor lora_A0;
    private Tensor lora_B0;
#pragma warning restore IDE1006, SA1300
    private readonly HostLayer? _host;
    private readonly double _scale;
    private long _invocations;
    private bool _contributesNothing;
    private Tensor? _weightBeforeMerge;

    internal GuardedLoraAdapter(string layerName, FrozenPart frozen, Tensor adapterA, Tensor adapterB, double scale)
        : base(nameof(GuardedLoraAdapter))
    {
        LayerName = layerName;
        weight = frozen.Weight;
        bias = frozen.Bias;
        _scale = scale;
        _host = frozen.Host is null ? null : new HostLayer(frozen.Host);
        using (no_grad())
        {
            // Parameters belong to the module, never to a caller's dispose scope.
            lora_A = new Parameter(adapterA.detach().clone(), requires_grad: true);
            lora_B = new Parameter(adapterB.detach().clone(), requires_grad: true);
            lora_A.DetachFromDisposeScope();
            lora_B.DetachFromDisposeScope();
            lora_A0 = adapterA.detach().clone().DetachFromDisposeScope();
            lora_B0 = adapterB.detach().clone().DetachFromDisposeScope();
        }

        RegisterComponents();
    }

    /// <summary>The dotted module path of the layer this adapter guards.</summary>
    public string LayerName { get; }

    /// <summary>Adapter rank r.</summary>
    public int Rank => (int)lora_A.shape[0];

    /// <summary>Input width n.</summary>
    public long InFeatures => lora_A.shape[1];

    /// <summary>Output width m.</summary>
    public long OutFeatures => lora_B.shape[0];

    /// <summary>The scale s of the adapter's contribution.</summary>
    public double Scale => _scale;

    /// <summary>The trainable input-side factor A (r x n). After <c>.to()</c> this is a new object: look it up again.</summary>
    public Parameter LoraA => lora_A;

    /// <summary>The trainable output-side factor B (m x r).</summary>
    public Parameter LoraB => lora_B;

    /// <summary>A at initialisation (already projected for guarded methods); used to disable the adapter and to export deltas.</summary>
    public Tensor InitialA => lora_A0;

    /// <summary>B at initialisation.</summary>
    public Tensor InitialB => lora_B0;

    /// <summary>The frozen weight: the adapter's own residual <c>W'</c>, or the host Linear's (hook mode).</summary>
    public Tensor FrozenWeight => weight ?? _host!.Linear.weight!;

    /// <summary>The frozen bias, if the layer has one.</summary>
    public Tensor? FrozenBias => _host is null ? bias : _host.Linear.bias;

    /// <summary>The adapter's own weight Parameter (replaced mode: the residual, or the user's weight it shares); null in hook mode.</summary>
    internal Parameter? WeightParameter => weight;

    /// <summary>The adapter's bias Parameter (replaced mode: always the user's, shared); null in hook mode.</summary>
    internal Parameter? BiasParameter => bias;

    /// <summary>True when this adapter is attached through a forward hook on a Linear that could not be replaced.</summary>
    public bool IsHookMode => _host is not null;

    /// <summary>False while the adapter is disabled: the layer then computes the ORIGINAL weight <c>W' + s B0 A0</c>.</summary>
    public bool IsEnabled { get; private set; } = true;

    /// <summary>True while <c>s B A</c> is merged into the frozen weight.</summary>
    public bool IsMerged { get; private set; }

    /// <summary>True when the layer's null space is empty and its factors are frozen.</summary>
    public bool IsFrozen => !lora_A.requires_grad;

    internal ProjectorHandle? Projector { get; set; }

    /// <summary>The harmful covariance factor of this layer's group (shared; owned by the <see cref="GuardedModel"/>), or null.</summary>
    internal HarmfulCovarianceFactor? HarmfulFactor { get; set; }

    /// <summary><c>||W C_h^(1/2)||_F^2</c> of the ORIGINAL weight: the output energy the drift is measured against.</summary>
    internal double HarmfulEnergy { get; set; }

    /// <summary><c>tr(C_h) / n</c> of this layer's group: the unit of <see cref="GuardedLoraOptions.HarmfulDriftFloor"/>.</summary>
    internal double HarmfulMeanEigenvalue { get; set; }

    private Tensor? _initialAFactor;
    /// <summary><c>A0 F</c> (r x k) in <paramref name="f"/>'s dtype and device: constant, so computed once.</summary>
    internal Tensor InitialAFactor(Tensor f)
    {
        if (_initialAFactor is null || _initialAFactor.dtype != f.dtype || !_initialAFactor.device.SameAs(f.device))
        {
            _initialAFactor?.Dispose();
            using var noGrad = no_grad();
            _initialAFactor = lora_A0.to(f.dtype, f.device).mm(f).DetachFromDisposeScope();
        }

        return _initialAFactor;
    }

    /// <summary>The fingerprint of the layer's ORIGINAL weight, taken before the surgery; saved so Load can recognise the weights.</summary>
    internal WeightFingerprint? OriginalWeight { get; init; }

    /// <summary>How many times the model's forward reached this adapter (read by <see cref="GuardedModel.VerifyInterception"/>).</summary>
    internal long Invocations => Interlocked.Read(ref _invocations);

    /// <summary>False when the frozen weight is the user's original Parameter (LoRA-style methods share it).</summary>
    internal bool OwnsWeight { get; init; }

    /// <summary>
    /// True when the frozen weight holds the model's ORIGINAL values (no residual was formed): merging changes the user's
    /// own weight in place, so <see cref="CommitMerge"/> keeps a copy and <see cref="Unmerge"/> restores it bit for bit.
    /// </summary>
    internal bool FrozenWeightIsOriginal { get; init; }

    /// <inheritdoc />
    public override Tensor forward(Tensor input)
    {
        using var scope = NewDisposeScope();
        Tensor output;
        if (_host is not null)
        {
            output = Delta(input) ?? zeros(1, dtype: input.dtype, device: input.device);
        }
        else
        {
            output = functional.linear(input, weight!, bias);
            var delta = Delta(input);
            if (delta is not null)
            {
                output = output + delta;
            }
        }

        return output.MoveToOuterDisposeScope();
    }

    /// <summary>The adapter's additive contribution for the current state, or null when there is none (merged, or frozen).</summary>
    internal Tensor? Delta(Tensor input)
    {
        Interlocked.Increment(ref _invocations);
        if (IsMerged || _contributesNothing)
        {
            return null;
        }

        var (a, b) = IsEnabled ? ((Tensor)lora_A, (Tensor)lora_B) : (lora_A0, lora_B0);

        // Factors over a half-precision base are float32: compute the delta there and hand it back in the input's dtype.
        var x = input.dtype == a.dtype ? input : input.to_type(a.dtype);
        var delta = functional.linear(functional.linear(x, a), b);
        delta = _scale == 1.0 ? delta : delta * _scale;
        return delta.dtype == input.dtype ? delta : delta.to_type(input.dtype);
    }

    internal void SetEnabled(bool enabled)
    {
        if (IsMerged && !enabled)
        {
            throw new InvalidOperationException($"Layer '{LayerName}': unmerge the adapter before disabling it.");
        }

        IsEnabled = enabled;
    }

    /// <summary>
    /// Freezes (or unfreezes) the factors. A layer is frozen when its null space is empty, so its projector is zero and
    /// A = A0 = 0 (Attach projects them, Load verifies A = A P): the delta is exactly zero, and the forward and backward
    /// skip its two products.
    /// </summary>
    internal void SetFrozen(bool frozen)
    {
        lora_A.requires_grad = !frozen;
        lora_B.requires_grad = !frozen;
        _contributesNothing = frozen;
    }

    /// <summary><c>s B A</c> in the frozen weight's dtype, computed without gradients.</summary>
    internal Tensor DeltaWeight()
    {
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var target = FrozenWeight;
        var compute = AdapterPrecision.ComputeType(target.dtype);
        var delta = lora_B.to_type(compute).mm(lora_A.to_type(compute)) * _scale;
        return delta.to_type(target.dtype).MoveToOuterDisposeScope();
    }

    /// <summary>Computes the merged weight and checks it is finite before anything is written.</summary>
    internal Tensor MergedWeightOrThrow()
    {
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var merged = FrozenWeight + DeltaWeight();
        if (!isfinite(merged).all().item<bool>())
        {
            throw new InvalidOperationException(
                $"Layer '{LayerName}': merging would write NaN or infinite values into the weight (the adapter factors diverged). " +
                "Nothing was written. Lower the learning rate or reload a saved adapter.");
        }

        return merged.MoveToOuterDisposeScope();
    }

    internal void CommitMerge(Tensor merged)
    {
        using var noGrad = no_grad();
        if (FrozenWeightIsOriginal)
        {
            // (W + D) - D is not W in floating point: keep the user's weight to give it back exactly.
            _weightBeforeMerge = FrozenWeight.detach().clone().DetachFromDisposeScope();
        }

        FrozenWeight.copy_(merged);
        IsMerged = true;
    }

    internal void Unmerge()
    {
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        if (_weightBeforeMerge is not null)
        {
            FrozenWeight.copy_(_weightBeforeMerge);
            _weightBeforeMerge.Dispose();
            _weightBeforeMerge = null;
        }
        else
        {
            FrozenWeight.sub_(DeltaWeight());
        }

        IsMerged = false;
    }

    /// <summary>
    /// Keeps the factors in float32 when the module is converted to half precision (<c>model.half()</c> after Attach):
    /// the frozen weight and bias take the half type, the factors and their initial values take float32.
    /// </summary>
    /// <inheritdoc />
    protected override void _toEpilog(ScalarType? dtype, Device? device, bool non_blocking)
    {
        if (dtype is not { } type || !TensorChecks.IsHalfPrecision(type))
        {
            base._toEpilog(dtype, device, non_blocking);
            return;
        }

        var factorType = AdapterPrecision.FactorType(type);
        weight = Convert(weight, nameof(weight), type, device);
        bias = Convert(bias, nameof(bias), type, device);
        lora_A = Convert(lora_A, nameof(lora_A), factorType, device)!;
        lora_B = Convert(lora_B, nameof(lora_B), factorType, device)!;
        if (ReplaceBuffer(factorType, device, lora_A0, out var a0))
        {
            lora_A0 = a0!;
            ConditionallyRegisterBuffer(nameof(lora_A0), lora_A0);
        }

        if (ReplaceBuffer(factorType, device, lora_B0, out var b0))
        {
            lora_B0 = b0!;
            ConditionallyRegisterBuffer(nameof(lora_B0), lora_B0);
        }

        if (device is not null)
        {
            _deviceType = device.type;
            _deviceIndex = device.index;
        }
    }

    private Parameter? Convert(Parameter? parameter, string name, ScalarType type, Device? device)
    {
        if (parameter is null || !ReplaceParameter(type, device, parameter, out var converted))
        {
            return parameter;
        }

        parameter.Dispose();
        ConditionallyRegisterParameter(name, converted);
        return converted;
    }

    /// <inheritdoc />
    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            _host?.Remove();
            _initialAFactor?.Dispose();
        }

        base.Dispose(disposing);
    }

    /// <summary>
    /// Frees what this adapter allocated after a failed attachment. Unlike <see cref="Module.Dispose()"/> it never touches
    /// the frozen weight or bias it may share with the user's original Linear.
    /// </summary>
    internal void ReleaseAfterFailedAttach(bool ownsWeight)
    {
        _host?.Remove();
        _weightBeforeMerge?.Dispose();
        _weightBeforeMerge = null;
        lora_A.Dispose();
        lora_B.Dispose();
        lora_A0.Dispose();
        lora_B0.Dispose();
        if (ownsWeight)
        {
            weight?.Dispose();
        }
    }

    internal void AttachHook()
    {
        var host = _host ?? throw new InvalidOperationException("Not a hook-mode adapter.");
        host.Remover = host.Linear.register_forward_hook((_, input, output) =>
        {
            var delta = Delta(input);
            return delta is null ? null! : output + delta;
        });
    }

    internal void DetachHook() => _host?.Remove();

    /// <summary>Holds the host Linear outside TorchSharp's field registration (it must not become a child).</summary>
    private sealed class HostLayer(Linear linear)
    {
        public Linear Linear { get; } = linear;

        public HookableModule<Func<Module<Tensor, Tensor>, Tensor, Tensor>, Func<Module<Tensor, Tensor>, Tensor, Tensor, Tensor>>.HookRemover? Remover { get; set; }

        public void Remove()
        {
            Remover?.remove();
            Remover = null;
        }
    }
}
