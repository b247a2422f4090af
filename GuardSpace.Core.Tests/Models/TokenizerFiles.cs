using System.Text;
using System.Text.Json.Nodes;
using Google.Protobuf;

namespace GuardSpace.Tests.Models;

/// <summary>Tokenizer files written by the tests: a byte-level BPE tokenizer.json and a SentencePiece tokenizer.model.</summary>
internal static class TokenizerFiles
{
    public const int Bos = 265;
    public const int Eos = 266;

    /// <summary>GPT-2's byte-to-character table: printable Latin-1 bytes map to themselves, the others to U+0100 onwards in byte order.</summary>
    public static char ByteChar(int b)
    {
        static bool Printable(int x) => x is >= '!' and <= '~' or >= '¡' and <= '¬' or >= '®' and <= 'ÿ';
        if (Printable(b))
        {
            return (char)b;
        }

        var n = Enumerable.Range(0, b).Count(x => !Printable(x));
        return (char)(256 + n);
    }

    /// <summary>
    /// Vocabulary: the 256 byte characters (id = byte), then he=256, ll=257, hell=258, hello=259, Ġw=260, or=261, Ġwor=262,
    /// ld=263, Ġworld=264, and the added tokens &lt;|begin_of_text|&gt;=265, &lt;|end_of_text|&gt;=266. Pre-tokenizer: a
    /// Split regex then ByteLevel, as Llama 3 writes it; the template prepends the BOS token.
    /// </summary>
    public static void WriteByteLevelBpe(string directory, string? normalizer = null)
    {
        var vocab = new JsonObject();
        for (var b = 0; b < 256; b++)
        {
            vocab[ByteChar(b).ToString()] = b;
        }

        string[] merged = ["he", "ll", "hell", "hello", "Ġw", "or", "Ġwor", "ld", "Ġworld"];
        for (var i = 0; i < merged.Length; i++)
        {
            vocab[merged[i]] = 256 + i;
        }

        vocab["<|begin_of_text|>"] = Bos;
        vocab["<|end_of_text|>"] = Eos;
        var root = new JsonObject
        {
            ["version"] = "1.0",
            ["added_tokens"] = new JsonArray(
                new JsonObject { ["id"] = Bos, ["content"] = "<|begin_of_text|>", ["special"] = true },
                new JsonObject { ["id"] = Eos, ["content"] = "<|end_of_text|>", ["special"] = true }),
            ["normalizer"] = normalizer is null ? null : new JsonObject { ["type"] = normalizer },
            ["pre_tokenizer"] = new JsonObject
            {
                ["type"] = "Sequence",
                ["pretokenizers"] = new JsonArray(
                    new JsonObject { ["type"] = "Split", ["pattern"] = new JsonObject { ["Regex"] = @"'s|'t| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+" }, ["behavior"] = "Isolated", ["invert"] = false },
                    new JsonObject { ["type"] = "ByteLevel", ["add_prefix_space"] = false, ["trim_offsets"] = true, ["use_regex"] = false }),
            },
            ["post_processor"] = new JsonObject
            {
                ["type"] = "TemplateProcessing",
                ["single"] = new JsonArray(new JsonObject { ["SpecialToken"] = new JsonObject { ["id"] = "<|begin_of_text|>", ["type_id"] = 0 } }, new JsonObject { ["Sequence"] = new JsonObject { ["id"] = "A", ["type_id"] = 0 } }),
                ["special_tokens"] = new JsonObject { ["<|begin_of_text|>"] = new JsonObject { ["id"] = "<|begin_of_text|>", ["ids"] = new JsonArray(Bos), ["tokens"] = new JsonArray("<|begin_of_text|>") } },
            },
            ["decoder"] = new JsonObject { ["type"] = "ByteLevel" },
            ["model"] = new JsonObject
            {
                ["type"] = "BPE",
                ["vocab"] = vocab,
                ["merges"] = new JsonArray("h e", "l l", "he ll", "hell o", "Ġ w", "o r", "Ġw or", "l d", "Ġwor ld"),
            },
        };
        File.WriteAllText(Path.Combine(directory, "tokenizer.json"), root.ToJsonString(), new UTF8Encoding(false));
    }

    /// <summary>
    /// A SentencePiece BPE ModelProto written field by field: pieces &lt;unk&gt; (0), &lt;s&gt; (1), &lt;/s&gt; (2), then ▁, h,
    /// e, l, o, w, r, d (3-10), then ▁h, ▁he, ▁hel, ▁hell, ▁hello (11-15) with descending scores, so "hello" merges into
    /// one piece; trainer spec BPE with unk 0, bos 1, eos 2; normalizer adding a dummy prefix and escaping spaces.
    /// </summary>
    public static void WriteSentencePiece(string directory)
    {
        using var file = File.Create(Path.Combine(directory, "tokenizer.model"));
        using var output = new CodedOutputStream(file);
        void Piece(string text, float score, int type)
        {
            using var buffer = new MemoryStream();
            using (var piece = new CodedOutputStream(buffer, leaveOpen: true))
            {
                piece.WriteTag(1, WireFormat.WireType.LengthDelimited);
                piece.WriteString(text);
                piece.WriteTag(2, WireFormat.WireType.Fixed32);
                piece.WriteFloat(score);
                piece.WriteTag(3, WireFormat.WireType.Varint);
                piece.WriteEnum(type);
            }

            output.WriteTag(1, WireFormat.WireType.LengthDelimited);
            output.WriteBytes(ByteString.CopyFrom(buffer.ToArray()));
        }

        Piece("<unk>", 0, 2);
        Piece("<s>", 0, 3);
        Piece("</s>", 0, 3);
        foreach (var c in new[] { "▁", "h", "e", "l", "o", "w", "r", "d" })
        {
            Piece(c, -10, 1);
        }

        string[] merges = ["▁h", "▁he", "▁hel", "▁hell", "▁hello"];
        for (var i = 0; i < merges.Length; i++)
        {
            Piece(merges[i], -1 - i, 1);
        }

        using (var trainer = new MemoryStream())
        {
            using (var t = new CodedOutputStream(trainer, leaveOpen: true))
            {
                t.WriteTag(3, WireFormat.WireType.Varint);
                t.WriteEnum(2); // BPE
                t.WriteTag(40, WireFormat.WireType.Varint);
                t.WriteInt32(0); // unk_id
                t.WriteTag(41, WireFormat.WireType.Varint);
                t.WriteInt32(1); // bos_id
                t.WriteTag(42, WireFormat.WireType.Varint);
                t.WriteInt32(2); // eos_id
                t.WriteTag(43, WireFormat.WireType.Varint);
                t.WriteInt32(-1); // pad_id
            }

            output.WriteTag(2, WireFormat.WireType.LengthDelimited);
            output.WriteBytes(ByteString.CopyFrom(trainer.ToArray()));
        }

        using (var normalizer = new MemoryStream())
        {
            using (var n = new CodedOutputStream(normalizer, leaveOpen: true))
            {
                n.WriteTag(1, WireFormat.WireType.LengthDelimited);
                n.WriteString("identity");
                n.WriteTag(3, WireFormat.WireType.Varint);
                n.WriteBool(true); // add_dummy_prefix
                n.WriteTag(4, WireFormat.WireType.Varint);
                n.WriteBool(true); // remove_extra_whitespaces
                n.WriteTag(5, WireFormat.WireType.Varint);
                n.WriteBool(true); // escape_whitespaces
            }

            output.WriteTag(3, WireFormat.WireType.LengthDelimited);
            output.WriteBytes(ByteString.CopyFrom(normalizer.ToArray()));
        }
    }
}
