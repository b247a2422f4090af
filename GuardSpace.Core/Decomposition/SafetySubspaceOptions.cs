using GuardSpace.Internal;
using static TorchSharp.torch;

namespace GuardSpace.Decomposition;

/// <summary>Options of <see cref="SafetySubspaceDecomposer"/>. Every default follows the official GuardSpace / CorDA code.</summary>
public sealed class SafetySubspaceOptions
{
    /// <summary>Which factorisation and which components. Default: <see cref="DecompositionMethod.CovarianceSmallest"/> (GuardSpace).</summary>
    public DecompositionMethod Method { get; set; } = DecompositionMethod.CovarianceSmallest;

    /// <summary>
    /// First damping factor l in <c>C_l = C + l * mean(diag C) * I</c>; doubled until <c>C_l</c> is well conditioned.
    /// Default 0.01 (official). Must be positive and finite.
    /// </summary>
    public double InitialDamping { get; set; } = 0.01;

    /// <summary>
    /// <c>C_l</c> is accepted when its Cholesky factorisation succeeds and solving against it leaves a relative
    /// residual <c>||C_l X - Z||_F / ||Z||_F</c> below this value on random probes. Default 0.05 (the official
    /// bound on <c>||C_l C_l^-1 - I||_F</c>, checked without forming the inverse).
    /// </summary>
    public double DampingResidualTolerance { get; set; } = 0.05;

    /// <summary>How many times the damping may double before the layer is reported as hopeless. Default 40.</summary>
    public int MaxDampingDoublings { get; set; } = 40;

    /// <summary>
    /// Precision of the maths, whatever the weight's dtype (fp16/bf16 weights are cast up and the results cast back).
    /// <see cref="ScalarType.Float64"/> (default, exact) or <see cref="ScalarType.Float32"/> (faster, notably on GPUs).
    /// </summary>
    public ScalarType ComputeType { get; set; } = ScalarType.Float64;

    /// <summary>
    /// How the r extreme singular triplets are found. Default <see cref="DecompositionSolver.Auto"/>: the iterative solver
    /// for the smallest-component methods when <c>min(m, n) &gt;= 512</c>, <c>r &lt;= min(m, n) / 32</c> and <c>max(m, n) &lt;= 1.5 min(m, n)</c>, the full thin
    /// SVD otherwise. Both give the same
    /// decomposition up to rounding; the iterative solver falls back to the full SVD when it cannot guarantee that.
    /// </summary>
    public DecompositionSolver Solver { get; set; } = DecompositionSolver.Auto;

    /// <summary>
    /// Convergence test of the iterative solver: every one of the r + 1 extreme Ritz triplets (<c>M v = s u</c> holds by
    /// construction) must have a relative residual at most this: <c>||M^T u - s v|| / ||M||_F</c> for the r largest, and for
    /// the r smallest the same residual weighted by each stray direction's effect on the adapter (see
    /// <see cref="DecompositionDiagnostics.SolverResidual"/>).
    /// Default 1e-13 (its float64 rounding floor is about 1e-16). Must be in (0, 1).
    /// </summary>
    public double IterativeTolerance { get; set; } = 1e-13;

    /// <summary>
    /// Iterations the iterative solver may take before it falls back to the full SVD. Default 100. Must be in [1, 10000].
    /// </summary>
    public int IterativeMaxIterations { get; set; } = 100;

    /// <summary>
    /// Throws one <see cref="ArgumentException"/> listing every invalid option with its allowed range; its
    /// <see cref="ArgumentException.ParamName"/> is the first offending property.
    /// </summary>
    public void Validate()
    {
        var errors = new OptionErrors(nameof(SafetySubspaceOptions));
        AddErrors(errors);
        errors.ThrowIfAny();
    }

    /// <summary>Records every invalid option in <paramref name="errors"/>.</summary>
    internal void AddErrors(OptionErrors errors)
    {
        errors.Check(Enum.IsDefined(Method), nameof(Method), $"is {Method}, not a defined DecompositionMethod.");
        errors.Check(InitialDamping > 0 && !double.IsInfinity(InitialDamping), nameof(InitialDamping), $"must be positive and finite (default 0.01); got {InitialDamping}.");
        errors.Check(DampingResidualTolerance > 0 && !double.IsInfinity(DampingResidualTolerance), nameof(DampingResidualTolerance), $"must be positive and finite (default 0.05); got {DampingResidualTolerance}.");
        errors.Check(MaxDampingDoublings is >= 0 and <= 200, nameof(MaxDampingDoublings), $"must be in [0, 200] (default 40); got {MaxDampingDoublings}.");
        errors.Check(ComputeType is ScalarType.Float32 or ScalarType.Float64, nameof(ComputeType), $"must be Float32 or Float64 (default Float64); got {ComputeType}. Half precision is too coarse for an SVD.");
        errors.Check(Enum.IsDefined(Solver), nameof(Solver), $"is {Solver}, not a defined DecompositionSolver.");
        errors.Check(IterativeTolerance is > 0 and < 1, nameof(IterativeTolerance), $"must be in (0, 1) (default 1e-13); got {IterativeTolerance}.");
        errors.Check(IterativeMaxIterations is >= 1 and <= 10000, nameof(IterativeMaxIterations), $"must be in [1, 10000] (default 100); got {IterativeMaxIterations}.");
    }

    /// <summary>A copy of these options.</summary>
    internal SafetySubspaceOptions Clone() => (SafetySubspaceOptions)MemberwiseClone();
}
