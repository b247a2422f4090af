using GuardSpace.Models.Templates;

namespace GuardSpace.Tests.Models;

/// <summary>
/// The Jinja subset of GuardSpace.Models.Templates, construct by construct. Each expected string was produced by
/// Python's jinja2 3.1 with the settings transformers' apply_chat_template uses (sandboxed, trim_blocks, lstrip_blocks,
/// loop controls, tojson as json.dumps(ensure_ascii=False)), on the variables of <see cref="Variables"/>.
/// </summary>
public sealed class JinjaTemplateTests
{
    private static Dictionary<string, object?> Variables() => new()
    {
        ["messages"] = new[] { ChatMessage.System("Be kind."), ChatMessage.User(" Hi there "), ChatMessage.Assistant("Hello!") },
        ["x"] = 3,
        ["name"] = "Ada",
        ["nums"] = new[] { 3, 1, 2 },
        ["info"] = new Dictionary<string, object?> { ["b"] = 2, ["a"] = 1 },
        ["empty"] = Array.Empty<int>(),
        ["flag"] = true,
        ["nothing"] = null,
        ["text"] = "a,b,,c",
    };

    private static string Render(string template) => JinjaTemplate.Parse(template).Render(Variables());

    [Theory]
    [InlineData("{# comment #}a{# two\nlines #}b", "ab")]
    [InlineData("{% if x > 2 %}big{% elif x > 1 %}mid{% else %}small{% endif %}", "big")]
    [InlineData("{% if x > 5 %}big{% elif x > 1 %}mid{% else %}small{% endif %}", "mid")]
    [InlineData("{% if x > 5 %}big{% elif x > 4 %}mid{% else %}small{% endif %}", "small")]
    [InlineData("{% for n in nums %}{{ loop.index0 }}{{ loop.index }}{{ loop.length }}{% if loop.first %}F{% endif %}{% if loop.last %}L{% endif %}{{ loop.revindex }};{% endfor %}", "013F3;1232;233L1;")]
    [InlineData("{% for n in empty %}x{% else %}none{% endfor %}", "none")]
    [InlineData("{% for k, v in info | items %}{{ k }}={{ v }} {% endfor %}", "b=2 a=1 ")]
    [InlineData("{% for k, v in info.items() %}{{ k }}={{ v }} {% endfor %}", "b=2 a=1 ")]
    [InlineData("{% for n in nums if n > 1 %}{{ n }}{{ loop.length }} {% endfor %}", "32 22 ")]
    [InlineData("{% for n in nums %}{% if n == 1 %}{% continue %}{% endif %}{% if n == 2 %}{% break %}{% endif %}{{ n }}{% endfor %}", "3")]
    [InlineData("{% set y = x * 2 %}{{ y }}", "6")]
    [InlineData("{% set a, b = [1, 'two'] %}{{ b }}{{ a }}", "two1")]
    [InlineData("{% for n in nums %}{% set last = n %}{% endfor %}[{{ last }}]", "[]")]
    [InlineData("{% set ns = namespace(total=0) %}{% for n in nums %}{% set ns.total = ns.total + n %}{% endfor %}{{ ns.total }}", "6")]
    [InlineData("{% set block %}in {{ name }}{% endset %}<{{ block }}>", "<in Ada>")]
    [InlineData("{% macro greet(who, punct='!') %}Hi {{ who }}{{ punct }}{% endmacro %}{{ greet(name) }} {{ greet('Bo', punct='?') }}", "Hi Ada! Hi Bo?")]
    [InlineData("{{ 7 // 2 }} {{ 7 / 2 }} {{ 7 % 3 }} {{ -7 % 3 }} {{ 2 ** 10 }} {{ 1 + 2 * 3 }} {{ (1 + 2) * 3 }} {{ 2.5 * 2 }}", "3 3.5 1 2 1024 7 9 5.0")]
    [InlineData("{{ 'a' ~ 1 ~ none }} {{ 'ab' * 3 }} {{ [1] + [2] }} {{ 'x' + 'y' }}", "a1None ababab [1, 2] xy")]
    [InlineData("{{ 1 < 2 }} {{ 2 <= 1 }} {{ 'a' == 'a' }} {{ 1 != 1.0 }} {{ 'ell' in 'hello' }} {{ 4 not in nums }} {{ 'a' in info }}", "True False True False True True True")]
    [InlineData("{{ not flag }} {{ flag and 'yes' }} {{ nothing or 'fallback' }} {{ 0 or [] }} {{ 'A' if flag else 'B' }} [{{ 'A' if not flag }}]", "False yes fallback [] A []")]
    [InlineData("{{ nums[0] }}{{ nums[-1] }}{{ nums[1:] }}{{ nums[::-1] }}{{ nums[:-1] }}{{ name[1:] }}{{ name[::-1] }}{{ name[0] }}", "32[1, 2][2, 1, 3][3, 1]daadAA")]
    [InlineData("{{ messages[0]['role'] }} {{ messages[0].content }} {{ info.a }} [{{ info.missing }}] [{{ undefined_thing }}]", "system Be kind. 1 [] []")]
    [InlineData("[{{ messages[1].content | trim }}] {{ messages | length }} {{ name | length }} {{ name | upper }}{{ name | lower }}", "[Hi there] 3 3 ADAada")]
    [InlineData("{{ messages | selectattr('role', 'equalto', 'user') | map(attribute='content') | list }}", "[' Hi there ']")]
    [InlineData("{{ messages | rejectattr('role', 'equalto', 'system') | map(attribute='role') | join(', ') }}", "user, assistant")]
    [InlineData("{{ nums | map('string') | join('-') }} {{ nums | sort | list }} {{ nums | sort(reverse=true) | first }} {{ nums | last }}", "3-1-2 [1, 2, 3] 3 2")]
    [InlineData("{{ missing | default('dflt') }} {{ name | default('dflt') }} {{ '' | default('dflt', true) }} {{ nothing | default('dflt') }}", "dflt Ada dflt None")]
    [InlineData("{{ nums | tojson }} {{ info | tojson }} {{ 'é\"\\n' | tojson }} {{ {'k': [1, none, true]} | tojson(indent=2) }}", "[3, 1, 2] {\"b\": 2, \"a\": 1} \"é\\\"\\n\" {\n  \"k\": [\n    1,\n    null,\n    true\n  ]\n}")]
    [InlineData("{{ x | string }}{{ '5' | int + 1 }} {{ 2.7 | int }} {{ nums | sum }} {{ -3 | abs }} {{ 'Hello World' | replace('o', '0') }} {{ 'mixed case' | title }} {{ 'mIXED' | capitalize }}", "36 2 6 3 Hell0 W0rld Mixed Case Mixed")]
    [InlineData("{{ x is defined }} {{ y is defined }} {{ nothing is none }} {{ name is string }} {{ info is mapping }} {{ nums is iterable }} {{ x is number }} {{ x is not string }}", "True False True True True True True True")]
    [InlineData("{{ x is odd }} {{ x is even }} {{ 9 is divisibleby(3) }} {{ x is integer }} {{ 1.5 is float }} {{ flag is true }} {{ flag is false }} {{ flag is boolean }}", "True False True True True True False True")]
    [InlineData("{{ text.split(',') }} {{ text.split(',', 1) }} {{ ' a  b '.split() }} {{ '--x--'.strip('-') }} {{ '  x '.lstrip() }}| {{ 'x\\n\\n'.rstrip('\\n') }}", "['a', 'b', '', 'c'] ['a', 'b,,c'] ['a', 'b'] x x | x")]
    [InlineData("{{ name.startswith('A') }} {{ name.endswith(('z', 'a')) }} {{ name.replace('a', 'o') }} {{ name.upper() }} {{ name.lower() }} {{ 'a b'.title() }} {{ '-'.join(['x', 'y']) }} {{ name.find('d') }}", "True True Ado ADA ada A B x-y 1")]
    [InlineData("{{ info.get('a') }} {{ info.get('zz', 'none') }} {{ info.keys() | list }} {{ info.values() | list }}", "1 none ['b', 'a'] [2, 1]")]
    [InlineData("{{ range(3) | list }} {{ range(1, 7, 2) | list }} {{ nums | unique | list }} {{ nums | min }}{{ nums | max }}", "[0, 1, 2] [1, 3, 5] [3, 1, 2] 13")]
    [InlineData("{{ nums }} {{ info }} {{ nothing }} {{ flag }} {{ 1.0 }} {{ ['it\\'s', \"q\"] }}", "[3, 1, 2] {'b': 2, 'a': 1} None True 1.0 [\"it's\", 'q']")]
    [InlineData("a\n  {% if flag %}\n  yes\n  {% endif %}\nb", "a\n  yes\nb")]
    [InlineData("a  {%- if flag -%}  yes  {%- endif -%}  b", "ayesb")]
    [InlineData("<{{- ' x ' -}}>  {{ name }}  {#- gone -#}  end", "< x >  Adaend")]
    [InlineData("{% for n in nums %}\n  {{ n }}\n{% endfor %}\n", "  3\n  1\n  2\n")]
    [InlineData("{{ 'line1\nline2' | indent(2) }}|{{ 'a\nb' | indent(2, true) }}", "line1\n  line2|  a\n  b")]
    public void RendersEachConstructAsPythonJinjaDoes(string template, string expected) => Assert.Equal(expected, Render(template));

    [Theory]
    [InlineData("{% include 'other.jinja' %}", "'{% include %}' is not supported", 1)]
    [InlineData("x\n{% extends 'base' %}", "'{% extends %}' is not supported", 2)]
    [InlineData("a\nb\n{% filter upper %}x{% endfilter %}", "'{% filter %}' is not supported", 3)]
    [InlineData("{{ name | wordwrap(3) }}", "the filter 'wordwrap' is not supported", 1)]
    [InlineData("\n{{ x is prime }}", "the test 'prime' is not supported", 2)]
    [InlineData("{% if x %}\nopen", "never closed with '{% endif %}'", 2)]
    [InlineData("{% for n in nums %}{% endif %}", "expected '{% endfor %}'", 1)]
    [InlineData("{% endfor %}", "'{% endfor %}' has no matching opening statement", 1)]
    [InlineData("{% frobnicate %}", "unknown statement '{% frobnicate %}'", 1)]
    [InlineData("{{ 'open", "never closed", 1)]
    [InlineData("{{ x + }}", "expected a value", 1)]
    [InlineData("{% for n in nums recursive %}{% endfor %}", "recursive loops", 1)]
    public void RefusesWhatItDoesNotSupportAtParseTimeNamingConstructAndLine(string template, string message, int line)
    {
        var error = Assert.Throws<TemplateException>(() => JinjaTemplate.Parse(template));
        Assert.Contains(message, error.Message, StringComparison.Ordinal);
        Assert.Equal(line, error.Line);
        Assert.StartsWith($"Chat template line {line}: ", error.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("{{ undefined_thing.attr }}", "'undefined_thing' is undefined", 1)]
    [InlineData("\n{{ nothing.attr }}", "'nothing' is none", 2)]
    [InlineData("{{ name + 1 }}", "'+' cannot combine a string and a integer", 1)]
    [InlineData("{{ missing_function(1) }}", "'missing_function' is undefined, so it cannot be called", 1)]
    [InlineData("{% set name.attr = 1 %}", "needs 'name' to be a namespace()", 1)]
    [InlineData("{% set a, b = nums %}", "cannot unpack 3 value(s) into 2 names", 1)]
    [InlineData("{{ 1 // 0 }}", "division by zero", 1)]
    [InlineData("{{ x < 'a' }}", "cannot order a integer and a string", 1)]
    public void RenderingErrorsNameTheProblemAndTheLine(string template, string message, int line)
    {
        var error = Assert.Throws<TemplateException>(() => Render(template));
        Assert.Contains(message, error.Message, StringComparison.Ordinal);
        Assert.Equal(line, error.Line);
    }

    [Fact]
    public void RaiseExceptionCarriesTheTemplatesMessageAndLine()
    {
        var error = Assert.Throws<TemplateRaisedException>(() => Render("ok\n{% if x == 3 %}{{ raise_exception('three is not allowed') }}{% endif %}"));
        Assert.Equal("three is not allowed", error.TemplateMessage);
        Assert.Equal(2, error.Line);
        Assert.Equal("ok\n", Render("ok\n{% if x == 4 %}{{ raise_exception('never') }}{% endif %}"));
    }

    [Fact]
    public void CarriageReturnsAndOneTrailingNewlineAreNormalisedAsJinjaDoes()
    {
        Assert.Equal("a\nb", Render("a\r\nb\n"));
        Assert.Equal("a\n", Render("a\n\n"));
    }

    [Fact]
    public void UnicodeStaysAsWrittenAndCountsCodePoints()
    {
        var vars = new Dictionary<string, object?> { ["s"] = "Grüße 🙂 日本" };
        var template = JinjaTemplate.Parse("{{ s }}|{{ s | length }}|{{ s[6] }}|{{ s | tojson }}|{{ s[::-1] }}");
        Assert.Equal("Grüße 🙂 日本|10|🙂|\"Grüße 🙂 日本\"|本日 🙂 eßürG", template.Render(vars));
    }
}
