using System.Globalization;
using System.Text;

namespace GuardSpace.Models.Templates;

/// <summary>
/// Splits a template into text and tag tokens with Hugging Face's whitespace settings (<c>trim_blocks</c> and
/// <c>lstrip_blocks</c> on, a single trailing newline dropped, newlines normalised to <c>\n</c>) and the
/// <c>{%-</c> / <c>-%}</c> controls, then the inside of each tag into expression tokens.
/// </summary>
internal sealed class JinjaLexer
{
    private static readonly string[] Operators = ["==", "!=", "<=", ">=", "//", "**", "<", ">", "+", "-", "*", "/", "%", "~", "|", ".", ",", ":", "(", ")", "[", "]", "{", "}", "="];
    private readonly string _source;
    private readonly List<JinjaToken> _tokens = [];
    private int _pos;
    private int _line = 1;

    private JinjaLexer(string source)
    {
        var normalised = source.Replace("\r\n", "\n", StringComparison.Ordinal).Replace('\r', '\n');
        _source = normalised.EndsWith('\n') ? normalised[..^1] : normalised;
    }

    /// <summary>The tokens of <paramref name="source"/>, ending with <see cref="JinjaTokenKind.End"/>.</summary>
    public static List<JinjaToken> Tokenize(string source)
    {
        var lexer = new JinjaLexer(source);
        lexer.Run();
        return lexer._tokens;
    }

    private void Run()
    {
        var stripLeading = false;   // the previous tag ended with '-'
        var trimNewline = false;    // the previous tag was a block or comment (trim_blocks)
        var lineStart = true;
        while (true)
        {
            var tagStart = NextTag(_pos);
            var text = _source[_pos..(tagStart < 0 ? _source.Length : tagStart)];
            var textLine = _line;
            _line += Count(text, '\n');
            if (stripLeading)
            {
                var trimmed = text.TrimStart();
                lineStart = trimmed.Length < text.Length && text[..(text.Length - trimmed.Length)].EndsWith('\n');
                text = trimmed;
            }
            else if (trimNewline && text.StartsWith('\n'))
            {
                text = text[1..];
                textLine++;
                lineStart = true;
            }

            if (tagStart < 0)
            {
                AddText(text, textLine);
                _tokens.Add(new JinjaToken(JinjaTokenKind.End, "", _line));
                return;
            }

            var kind = _source[tagStart + 1];
            var marker = tagStart + 2 < _source.Length ? _source[tagStart + 2] : '\0';
            if (marker == '-')
            {
                text = text.TrimEnd();
            }
            else if (kind != '{' && marker != '+')
            {
                text = StripBlockIndent(text, lineStart);
            }

            AddText(text, textLine);
            _pos = tagStart + 2 + (marker is '-' or '+' ? 1 : 0);
            var closedWithStrip = kind == '#' ? SkipComment(tagStart) : LexTag(kind == '{');
            stripLeading = closedWithStrip;
            trimNewline = kind != '{';
            lineStart = false;
        }
    }

    private int NextTag(int from)
    {
        for (var i = _source.IndexOf('{', from); i >= 0 && i + 1 < _source.Length; i = _source.IndexOf('{', i + 1))
        {
            if (_source[i + 1] is '{' or '%' or '#')
            {
                return i;
            }
        }

        return -1;
    }

    private static string StripBlockIndent(string text, bool lineStart)
    {
        var newline = text.LastIndexOf('\n');
        if (newline < 0 && !lineStart)
        {
            return text;
        }

        var tail = text[(newline + 1)..];
        return tail.All(c => c is ' ' or '\t') ? text[..(newline + 1)] : text;
    }

    private void AddText(string text, int line)
    {
        if (text.Length > 0)
        {
            _tokens.Add(new JinjaToken(JinjaTokenKind.Text, text, line));
        }
    }

    private bool SkipComment(int tagStart)
    {
        var end = _source.IndexOf("#}", _pos, StringComparison.Ordinal);
        if (end < 0)
        {
            throw new TemplateException("the comment '{#' is never closed with '#}'.", _line);
        }

        _line += Count(_source[_pos..end], '\n');
        var strip = end > tagStart + 2 && _source[end - 1] == '-';
        _pos = end + 2;
        return strip;
    }

    /// <summary>Lexes one <c>{{ }}</c> or <c>{% %}</c> tag; true when it closes with <c>-</c>.</summary>
    private bool LexTag(bool output)
    {
        _tokens.Add(new JinjaToken(output ? JinjaTokenKind.OutputOpen : JinjaTokenKind.StatementOpen, output ? "{{" : "{%", _line));
        var close = output ? "}}" : "%}";
        var depth = 0;
        while (true)
        {
            SkipSpaces();
            if (_pos >= _source.Length)
            {
                throw new TemplateException($"the tag opened with '{(output ? "{{" : "{%")}' is never closed with '{close}'.", _line);
            }

            if (depth == 0 && At(close))
            {
                _pos += 2;
                _tokens.Add(new JinjaToken(output ? JinjaTokenKind.OutputClose : JinjaTokenKind.StatementClose, close, _line));
                return false;
            }

            if (depth == 0 && _source[_pos] is '-' or '+' && At(close, 1))
            {
                _pos += 3;
                _tokens.Add(new JinjaToken(output ? JinjaTokenKind.OutputClose : JinjaTokenKind.StatementClose, close, _line));
                return _source[_pos - 3] == '-';
            }

            var c = _source[_pos];
            if (char.IsLetter(c) || c == '_')
            {
                var start = _pos;
                while (_pos < _source.Length && (char.IsLetterOrDigit(_source[_pos]) || _source[_pos] == '_'))
                {
                    _pos++;
                }

                _tokens.Add(new JinjaToken(JinjaTokenKind.Name, _source[start.._pos], _line));
            }
            else if (char.IsAsciiDigit(c))
            {
                LexNumber();
            }
            else if (c is '\'' or '"')
            {
                LexString(c);
            }
            else
            {
                var op = Operators.FirstOrDefault(o => At(o))
                    ?? throw new TemplateException($"unexpected character '{c}' inside a tag.", _line);
                depth += op is "(" or "[" or "{" ? 1 : op is ")" or "]" or "}" ? -1 : 0;
                _pos += op.Length;
                _tokens.Add(new JinjaToken(JinjaTokenKind.Operator, op, _line));
            }
        }
    }

    private void SkipSpaces()
    {
        while (_pos < _source.Length && char.IsWhiteSpace(_source[_pos]))
        {
            _line += _source[_pos] == '\n' ? 1 : 0;
            _pos++;
        }
    }

    private void LexNumber()
    {
        var start = _pos;
        while (_pos < _source.Length && (char.IsAsciiDigit(_source[_pos]) || _source[_pos] == '_'))
        {
            _pos++;
        }

        var isFloat = _pos + 1 < _source.Length && _source[_pos] == '.' && char.IsAsciiDigit(_source[_pos + 1]);
        if (isFloat)
        {
            _pos++;
            while (_pos < _source.Length && char.IsAsciiDigit(_source[_pos]))
            {
                _pos++;
            }
        }

        var text = _source[start.._pos].Replace("_", "", StringComparison.Ordinal);
        _ = isFloat ? double.Parse(text, CultureInfo.InvariantCulture) : long.Parse(text, CultureInfo.InvariantCulture);
        _tokens.Add(new JinjaToken(isFloat ? JinjaTokenKind.Float : JinjaTokenKind.Integer, text, _line));
    }

    private void LexString(char quote)
    {
        var line = _line;
        var value = new StringBuilder();
        _pos++;
        while (true)
        {
            if (_pos >= _source.Length)
            {
                throw new TemplateException($"a string started with {quote} is never closed.", line);
            }

            var c = _source[_pos++];
            if (c == quote)
            {
                break;
            }

            _line += c == '\n' ? 1 : 0;
            if (c != '\\' || _pos >= _source.Length)
            {
                value.Append(c);
                continue;
            }

            var e = _source[_pos++];
            switch (e)
            {
                case 'n': value.Append('\n'); break;
                case 't': value.Append('\t'); break;
                case 'r': value.Append('\r'); break;
                case '0': value.Append('\0'); break;
                case '\\' or '\'' or '"': value.Append(e); break;
                case 'x': value.Append(Hex(2)); break;
                case 'u': value.Append(Hex(4)); break;
                case 'U': value.Append(char.ConvertFromUtf32(int.Parse(Take(8), NumberStyles.HexNumber, CultureInfo.InvariantCulture))); break;
                case '\n': _line++; break;
                default: value.Append('\\').Append(e); break;   // Python keeps unknown escapes as written
            }
        }

        _tokens.Add(new JinjaToken(JinjaTokenKind.String, value.ToString(), line));
    }

    private char Hex(int digits) => (char)int.Parse(Take(digits), NumberStyles.HexNumber, CultureInfo.InvariantCulture);

    private string Take(int count)
    {
        if (_pos + count > _source.Length)
        {
            throw new TemplateException("an escape sequence in a string is cut short.", _line);
        }

        _pos += count;
        return _source[(_pos - count).._pos];
    }

    private bool At(string text, int offset = 0) => string.CompareOrdinal(_source, _pos + offset, text, 0, text.Length) == 0;

    private static int Count(string text, char c) => text.Count(x => x == c);
}
