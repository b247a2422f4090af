using System.Text;

namespace GuardSpace.Models.Tokenization;

/// <summary>GPT-2's byte-to-character table used by the ByteLevel pre-tokenizer and decoder: printable Latin-1 bytes stand for themselves, the other bytes for U+0100 onwards in byte order.</summary>
internal static class ByteLevelAlphabet
{
    private static readonly char[] ByteToChar = Build();
    private static readonly Dictionary<char, byte> CharToByte = Enumerable.Range(0, 256).ToDictionary(b => ByteToChar[b], b => (byte)b);

    /// <summary>Each UTF-8 byte of <paramref name="text"/> as its stand-in character.</summary>
    public static string Encode(string text)
    {
        var bytes = Encoding.UTF8.GetBytes(text);
        var chars = new char[bytes.Length];
        for (var i = 0; i < bytes.Length; i++)
        {
            chars[i] = ByteToChar[bytes[i]];
        }

        return new string(chars);
    }

    /// <summary>The bytes <paramref name="token"/> stands for, or its own UTF-8 bytes when a character is not in the table (an added token).</summary>
    public static byte[] Decode(string token)
    {
        var bytes = new byte[token.Length];
        for (var i = 0; i < token.Length; i++)
        {
            if (!CharToByte.TryGetValue(token[i], out bytes[i]))
            {
                return Encoding.UTF8.GetBytes(token);
            }
        }

        return bytes;
    }

    private static char[] Build()
    {
        static bool Printable(int b) => b is >= '!' and <= '~' or >= '¡' and <= '¬' or >= '®' and <= 'ÿ';
        var table = new char[256];
        var next = 256;
        for (var b = 0; b < 256; b++)
        {
            table[b] = Printable(b) ? (char)b : (char)next++;
        }

        return table;
    }
}
