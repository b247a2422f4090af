// Renders every conversation of a JSON file with every template given, with and without the generation prompt, and
// writes one JSON object: "template|conversation|gen" (or "|no-gen") -> the text, or "ERROR" when the template refused.
// Usage: TemplateParity CONVERSATIONS.json OUT.json LABEL=MODEL_DIR_OR_FILE.jinja ...
// A .jinja file is rendered with bos_token "<s>" and eos_token "</s>".
using System.Text.Json;
using System.Text.Json.Nodes;
using GuardSpace.Models.Templates;

if (args.Length < 3)
{
    Console.Error.WriteLine("usage: TemplateParity CONVERSATIONS.json OUT.json LABEL=MODEL_DIR_OR_FILE.jinja ...");
    return 2;
}

var conversations = JsonNode.Parse(File.ReadAllText(args[0]))!.AsArray()
    .Select(c => (Name: c!["name"]!.GetValue<string>(), Messages: c["messages"]!.AsArray().Select(m => new ChatMessage(m!["role"]!.GetValue<string>(), m["content"]!.GetValue<string>())).ToList()))
    .ToList();
var results = new JsonObject();
foreach (var spec in args.Skip(2))
{
    var (label, path) = (spec[..spec.IndexOf('=', StringComparison.Ordinal)], spec[(spec.IndexOf('=', StringComparison.Ordinal) + 1)..]);
    var template = Directory.Exists(path) ? ChatTemplate.Load(path) : ChatTemplate.FromText(File.ReadAllText(path), "<s>", "</s>");
    foreach (var (name, messages) in conversations)
    {
        foreach (var generation in new[] { true, false })
        {
            var key = $"{label}|{name}|{(generation ? "gen" : "no-gen")}";
            try
            {
                results[key] = template.Apply(messages, generation);
            }
            catch (TemplateRaisedException e)
            {
                Console.Error.WriteLine($"{key}: {e.Message}");
                results[key] = "ERROR";
            }
            catch (TemplateException e)
            {
                // A failure of the interpreter, not a refusal by the template: shown as a difference.
                results[key] = $"FAILED: {e.Message}";
            }
        }
    }
}

File.WriteAllText(args[1], results.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
return 0;
