using static TorchSharp.torch;

namespace GuardSpace.Models.Llama;

/// <summary>
/// What every layer's attention needs for one forward pass, computed once by <see cref="LlamaModel"/>: the rotary tables
/// and, for padded batches, the boolean mask [b, 1, t, t] (true = may attend). Null mask: plain causal attention.
/// The tensors belong to the forward pass's dispose scope.
/// </summary>
public sealed record AttentionContext(Tensor Cos, Tensor Sin, Tensor? Mask);
