namespace GuardSpace.Projection;

/// <summary>How the eigenvalues of the harmful covariance are split into protected and null directions.</summary>
public enum NullSpaceThresholdRule
{
    /// <summary>
    /// Null directions have <c>mu &lt;= max(AbsoluteFloor, RelativeThreshold * max mu)</c>. The official rule
    /// (1e-6 relative, 1e-8 floor); the default.
    /// </summary>
    Relative,

    /// <summary>Null directions have <c>mu &lt;= AbsoluteThreshold</c> (AlphaEdit uses 2e-2 on its covariances).</summary>
    Absolute,

    /// <summary>
    /// Protect the smallest set of top eigen-directions that holds <c>EnergyFraction</c> of the trace (GPM style);
    /// the rest is the null space.
    /// </summary>
    EnergyFraction,
}
