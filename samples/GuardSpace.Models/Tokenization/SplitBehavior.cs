namespace GuardSpace.Models.Tokenization;

/// <summary>
/// What a splitting pre-tokenizer does with the matches of its pattern (tokenizer.json's <c>behavior</c>): drop them,
/// keep each alone, glue each to the piece before or after it, or glue runs of matches together.
/// </summary>
internal enum SplitBehavior
{
    Removed,
    Isolated,
    MergedWithPrevious,
    MergedWithNext,
    Contiguous,
}

/// <summary>Cuts a piece at pattern matches according to a <see cref="SplitBehavior"/>.</summary>
internal static class PieceSplitter
{
    public static SplitBehavior ParseBehavior(string? text, TokenizerJsonFields fields, string field) => text switch
    {
        "Removed" => SplitBehavior.Removed,
        "Isolated" => SplitBehavior.Isolated,
        "MergedWithPrevious" => SplitBehavior.MergedWithPrevious,
        "MergedWithNext" => SplitBehavior.MergedWithNext,
        "Contiguous" => SplitBehavior.Contiguous,
        _ => throw fields.Bad($"{field}.behavior", $"is '{text}', not Removed, Isolated, MergedWithPrevious, MergedWithNext or Contiguous"),
    };

    /// <summary>The pieces of <paramref name="piece"/> cut at <paramref name="matches"/> (with <paramref name="invert"/> the matches are the kept text).</summary>
    public static IEnumerable<TextPiece> Split(TextPiece piece, List<(int Start, int Length)> matches, SplitBehavior behavior, bool invert)
    {
        var spans = new List<(int Start, int End, bool IsMatch)>();
        var done = 0;
        foreach (var (start, length) in matches)
        {
            if (done < start)
            {
                spans.Add((done, start, invert));
            }

            spans.Add((start, start + length, !invert));
            done = start + length;
        }

        if (done < piece.Text.Length)
        {
            spans.Add((done, piece.Text.Length, invert));
        }

        var kept = Apply(spans, behavior);
        return kept.Where(s => s.End > s.Start)
            .Select(s => new TextPiece(piece.Text[s.Start..s.End], piece.AtStart && s.Start == 0));
    }

    private static List<(int Start, int End)> Apply(List<(int Start, int End, bool IsMatch)> spans, SplitBehavior behavior)
    {
        var result = new List<(int Start, int End)>();
        switch (behavior)
        {
            case SplitBehavior.Removed:
                result.AddRange(spans.Where(s => !s.IsMatch).Select(s => (s.Start, s.End)));
                break;
            case SplitBehavior.Isolated:
                result.AddRange(spans.Select(s => (s.Start, s.End)));
                break;
            case SplitBehavior.MergedWithPrevious:
                var previousMatch = false;
                foreach (var s in spans)
                {
                    if (s.IsMatch && !previousMatch && result.Count > 0)
                    {
                        result[^1] = (result[^1].Start, s.End);
                    }
                    else
                    {
                        result.Add((s.Start, s.End));
                    }

                    previousMatch = s.IsMatch;
                }

                break;
            case SplitBehavior.MergedWithNext:
                var nextMatch = false;
                for (var i = spans.Count - 1; i >= 0; i--)
                {
                    var s = spans[i];
                    if (s.IsMatch && !nextMatch && result.Count > 0)
                    {
                        result[^1] = (s.Start, result[^1].End);
                    }
                    else
                    {
                        result.Add((s.Start, s.End));
                    }

                    nextMatch = s.IsMatch;
                }

                result.Reverse();
                break;
            default:
                var lastMatch = false;
                foreach (var s in spans)
                {
                    if (s.IsMatch && lastMatch && result.Count > 0)
                    {
                        result[^1] = (result[^1].Start, s.End);
                    }
                    else
                    {
                        result.Add((s.Start, s.End));
                    }

                    lastMatch = s.IsMatch;
                }

                break;
        }

        return result;
    }
}
