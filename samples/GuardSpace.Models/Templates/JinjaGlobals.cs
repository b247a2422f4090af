using System.Globalization;

namespace GuardSpace.Models.Templates;

/// <summary>
/// The functions every template sees: Hugging Face's <c>raise_exception</c> and <c>strftime_now</c>, and Jinja's
/// <c>namespace</c>, <c>range</c> and <c>dict</c>.
/// </summary>
internal static class JinjaGlobals
{
    /// <summary>The functions by name.</summary>
    public static readonly IReadOnlyDictionary<string, JinjaCallable> Functions = new Dictionary<string, JinjaCallable>
    {
        ["raise_exception"] = (args, _) => throw new TemplateRaisedException(args.Count > 0 ? JinjaValues.Str(args[0]) : "", 0),
        ["namespace"] = (args, kwargs) =>
        {
            var ns = new JinjaNamespace();
            foreach (var mapping in args.OfType<Dictionary<string, object?>>())
            {
                foreach (var (k, v) in mapping)
                {
                    ns[k] = v;
                }
            }

            foreach (var (k, v) in kwargs)
            {
                ns[k] = v;
            }

            return ns;
        },
        ["dict"] = (_, kwargs) => kwargs.ToDictionary(p => p.Key, p => p.Value),
        ["range"] = (args, kwargs) =>
        {
            var a = new JinjaArgs("range()", args, kwargs, 0);
            var (start, stop) = args.Count >= 2 ? (a.Integer(0, "start")!.Value, a.Integer(1, "stop")!.Value) : (0L, a.Integer(0, "stop") ?? throw a.Error("'stop' is missing"));
            var step = a.Integer(2, "step", 1)!.Value;
            if (step == 0 || Math.Abs((stop - start) / step) > 1_000_000)
            {
                throw a.Error("the step is zero or the range holds more than a million numbers");
            }

            var items = new List<object?>();
            for (var i = start; step > 0 ? i < stop : i > stop; i += step)
            {
                items.Add(i);
            }

            return items;
        },
        ["strftime_now"] = (args, kwargs) => StrftimeNow(new JinjaArgs("strftime_now()", args, kwargs, 0).String(0, "format") ?? "%Y-%m-%d"),
    };

    /// <summary>The current local date in a Python <c>strftime</c> format (the codes date-stamped system prompts use).</summary>
    private static string StrftimeNow(string format)
    {
        var now = DateTime.Now;
        var culture = CultureInfo.InvariantCulture;
        return format
            .Replace("%d", now.ToString("dd", culture), StringComparison.Ordinal)
            .Replace("%b", now.ToString("MMM", culture), StringComparison.Ordinal)
            .Replace("%B", now.ToString("MMMM", culture), StringComparison.Ordinal)
            .Replace("%m", now.ToString("MM", culture), StringComparison.Ordinal)
            .Replace("%Y", now.ToString("yyyy", culture), StringComparison.Ordinal)
            .Replace("%H", now.ToString("HH", culture), StringComparison.Ordinal)
            .Replace("%M", now.ToString("mm", culture), StringComparison.Ordinal)
            .Replace("%A", now.ToString("dddd", culture), StringComparison.Ordinal);
    }
}
