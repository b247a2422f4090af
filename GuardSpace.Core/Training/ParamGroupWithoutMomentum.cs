using static TorchSharp.torch;

namespace GuardSpace.Training;

/// <summary>
/// How <see cref="GuardedOptimizer.ParamGroups"/> shows a parameter group of an inner optimizer that has no momentum
/// (Adam, AdamW, Adagrad, ...). Schedulers only check the OPTIMIZER for <see cref="optim.IMomentum"/>, which the wrapper
/// must implement for SGD's sake, and then set every group's momentum: without this view they would fail with a
/// NullReferenceException. The learning rate and Adam's betas pass through; momentum gets a clear error.
/// </summary>
internal sealed class ParamGroupWithoutMomentum(optim.ILearningRateController group, string optimizerName)
    : optim.ILearningRateController, optim.IMomentum, optim.IBetas
{
    /// <summary>The inner optimizer's own group.</summary>
    public optim.ILearningRateController Group { get; } = group;

    public double LearningRate
    {
        get => Group.LearningRate;
        set => Group.LearningRate = value;
    }

    public double InitialLearningRate
    {
        get => Group.InitialLearningRate;
        set => Group.InitialLearningRate = value;
    }

    public double Momentum
    {
        get => throw NoMomentum();
        set => throw NoMomentum();
    }

    public (double, double) Betas
    {
        get => (Group as optim.IBetas ?? throw NoMomentum()).Betas;
        set => (Group as optim.IBetas ?? throw NoMomentum()).Betas = value;
    }

    private InvalidOperationException NoMomentum() => new(
        $"The optimizer inside the GuardedOptimizer ({optimizerName}) has no momentum{(Group is optim.IBetas ? " (it has betas)" : string.Empty)}, " +
        "so a scheduler cannot cycle it: pass cycle_momentum: false, use an inner optimizer with momentum (SGD, RMSProp)" +
        (Group is optim.IBetas ? ", or use OneCycleLR, which cycles beta1 instead." : "."));
}
