// Compares GuardSpace.Models' tokenizer with Hugging Face tokenizers' output (reference.mjs) on a corpus.
// Usage: TokenizerParity NAME TOKENIZER_JSON CORPUS_JSONL REFERENCE_JSON
// Prints "NAME: N/N identical" (ids) and the decoded-text agreement, lists the first differences, exits 1 on any.
using System.Text.Json;
using System.Text.Json.Nodes;
using GuardSpace.Models.Tokenization;

if (args.Length != 4)
{
    Console.Error.WriteLine("usage: TokenizerParity NAME TOKENIZER_JSON CORPUS_JSONL REFERENCE_JSON");
    return 2;
}

var (name, tokenizerPath, corpusPath, referencePath) = (args[0], args[1], args[2], args[3]);
var corpus = File.ReadAllLines(corpusPath).Where(l => l.Length > 0).Select(l => JsonSerializer.Deserialize<string>(l)!).ToList();
var reference = JsonNode.Parse(File.ReadAllText(referencePath))!;
var expectedIds = reference["ids"]!.AsArray().Select(row => row!.AsArray().Select(id => id!.GetValue<int>()).ToList()).ToList();
var expectedText = reference["decoded"]!.AsArray().Select(t => t!.GetValue<string>()).ToList();
if (expectedIds.Count != corpus.Count || expectedText.Count != corpus.Count)
{
    Console.Error.WriteLine($"{name}: the reference has {expectedIds.Count} rows for {corpus.Count} corpus lines");
    return 1;
}

var watch = System.Diagnostics.Stopwatch.StartNew();
var tokenizer = TokenizerPipeline.Load(tokenizerPath);
var loadSeconds = watch.Elapsed.TotalSeconds;
int sameIds = 0, sameText = 0, shown = 0;
for (var i = 0; i < corpus.Count; i++)
{
    var ids = tokenizer.Encode(corpus[i], addSpecialTokens: true);
    var idsMatch = ids.SequenceEqual(expectedIds[i]);
    var text = tokenizer.Decode(expectedIds[i]);
    var textMatch = text == expectedText[i];
    sameIds += idsMatch ? 1 : 0;
    sameText += textMatch ? 1 : 0;
    if ((!idsMatch || !textMatch) && shown++ < 8)
    {
        Console.WriteLine($"  differs: {JsonSerializer.Serialize(corpus[i])}");
        if (!idsMatch)
        {
            Console.WriteLine($"    ours      [{string.Join(", ", ids)}]");
            Console.WriteLine($"    reference [{string.Join(", ", expectedIds[i])}]");
        }

        if (!textMatch)
        {
            Console.WriteLine($"    decoded ours {JsonSerializer.Serialize(text)} reference {JsonSerializer.Serialize(expectedText[i])}");
        }
    }
}

Console.WriteLine($"{name}: {sameIds}/{corpus.Count} identical (decode: {sameText}/{corpus.Count} identical; load {loadSeconds:F1} s, total {watch.Elapsed.TotalSeconds:F1} s)");
return sameIds == corpus.Count && sameText == corpus.Count ? 0 : 1;
