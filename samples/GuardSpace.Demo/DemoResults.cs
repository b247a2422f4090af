namespace GuardSpace.Demo;

/// <summary>One attack seed's figures; <see cref="FinalLoss"/> is null when nothing trained (every adapter frozen).</summary>
public sealed record SeedResult(int Seed, double HarmfulScore, double Accuracy, double Seconds, float? FinalLoss, List<DriftPoint> Drift, int ScreenFlagged, int ScreenFlaggedPoison, List<BehaviourPoint> Behaviour);

/// <summary>The behaviour monitor's reading (the refusal constraint's evaluation) at one attack step.</summary>
public sealed record BehaviourPoint(int Step, double ValidationLoss, double Target, double Multiplier, double? RefusalRate);

/// <summary>Every method's results on one attack scenario.</summary>
public sealed record ScenarioResult(AttackScenario Scenario, List<MethodResult> Methods);

/// <summary>The safety monitor's reading at one attack step: largest and root-mean-square relative change of the guarded layers' harmful outputs.</summary>
public sealed record DriftPoint(int Step, double Max, double RootMeanSquare);

/// <summary>One guarded layer as attached: input width, null-space dimension, damping, and whether its adapter is frozen.</summary>
public sealed record LayerInfo(string Name, int InputWidth, int? NullDimension, double? Lambda, bool Frozen);

/// <summary>One method's seeds, its layers (first seed) and its trainable parameter count (0: every adapter frozen).</summary>
public sealed record MethodResult(AttackMethod Method, List<SeedResult> Seeds, List<LayerInfo> Layers, int TrainableParameters);
