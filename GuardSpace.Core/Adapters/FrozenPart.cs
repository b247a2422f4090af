using TorchSharp.Modules;

namespace GuardSpace.Adapters;

/// <summary>
/// Where an adapter's frozen computation comes from: its own (residual or original) weight and the layer's bias when it
/// replaces the Linear, or the Linear itself (<see cref="Host"/>) when it is added beside it with a forward hook.
/// </summary>
/// <param name="Weight">The frozen weight the adapter holds (replaced mode), else null.</param>
/// <param name="Bias">The frozen bias the adapter holds (replaced mode), else null.</param>
/// <param name="Host">The hooked Linear (hook mode), else null.</param>
internal readonly record struct FrozenPart(Parameter? Weight, Parameter? Bias, Linear? Host);
