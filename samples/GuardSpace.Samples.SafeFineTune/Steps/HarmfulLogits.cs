using static TorchSharp.torch;

namespace GuardSpace.Samples.SafeFineTune;

/// <summary>The logits on the harmful prompts (padding zeroed, float64), kept to measure how far fine-tuning moved them.</summary>
internal sealed class HarmfulLogits : IDisposable
{
    private readonly List<Tensor> logits;

    private HarmfulLogits(List<Tensor> logits) => this.logits = logits;

    /// <summary>Runs the model on the harmful prompts, in the calibration batches.</summary>
    public static HarmfulLogits Measure(Session session, Checkpoint checkpoint)
    {
        var batches = Batches.Prompts(checkpoint.Encoding, checkpoint.Harmful, session.Options.Batch, session.Options.MaxLength);
        using var noGrad = no_grad();
        return new([.. batches.Select(rows =>
        {
            using var scope = NewDisposeScope();
            var (ids, mask) = Batches.Pad(rows, checkpoint.Pad, session.Device);
            return (checkpoint.Model.Forward(ids, mask) * mask.unsqueeze(-1)).to_type(ScalarType.Float64).MoveToOuterDisposeScope();
        })]);
    }

    /// <summary>The relative change of <paramref name="after"/> from these logits.</summary>
    public double ChangeTo(HarmfulLogits after) => LogitChange.Relative(after.logits, logits);

    public void Dispose() => logits.ForEach(t => t.Dispose());
}
