using GuardSpace.Models.Templates;
using GuardSpace.Tests.TestUtilities;

namespace GuardSpace.Tests.Models;

/// <summary>
/// <see cref="ChatTemplate"/>: templates written here in the style of each family (Llama-3, ChatML/Qwen3 with its
/// thinking block, Llama-2, Mistral v0.3, Gemma), loading from tokenizer_config.json, and splitting training examples.
/// Expected texts were rendered by Python's jinja2 with transformers' settings; the real templates of the families are
/// compared with @huggingface/jinja by .ci/steps/template-parity.sh.
/// </summary>
public sealed class ChatTemplateTests : IDisposable
{
    private const string Llama3 = """
        {{- bos_token }}
        {%- if messages[0]['role'] == 'system' %}
            {%- set system_message = messages[0]['content'] | trim %}
            {%- set messages = messages[1:] %}
        {%- else %}
            {%- set system_message = "" %}
        {%- endif %}
        {%- if system_message %}
            {{- '<|start_header_id|>system<|end_header_id|>\n\n' + system_message + '<|eot_id|>' }}
        {%- endif %}
        {%- for message in messages %}
            {{- '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n' + message['content'] | trim + '<|eot_id|>' }}
        {%- endfor %}
        {%- if add_generation_prompt %}
            {{- '<|start_header_id|>assistant<|end_header_id|>\n\n' }}
        {%- endif %}
        """;

    private const string ChatMl = """
        {%- if messages[0].role == 'system' %}
            {{- '<|im_start|>system\n' + messages[0].content + '<|im_end|>\n' }}
        {%- endif %}
        {%- set ns = namespace(last_query_index=messages|length - 1) %}
        {%- for message in messages[::-1] %}
            {%- if message.role == "user" and ns.last_query_index == messages|length - 1 %}
                {%- set ns.last_query_index = (messages|length - 1) - loop.index0 %}
            {%- endif %}
        {%- endfor %}
        {%- for message in messages %}
            {%- if message.role == "user" or (message.role == "system" and not loop.first) %}
                {{- '<|im_start|>' + message.role + '\n' + message.content + '<|im_end|>' + '\n' }}
            {%- elif message.role == "assistant" %}
                {%- set content = message.content %}
                {%- if '</think>' in content %}
                    {%- set content = content.split('</think>')[-1].lstrip('\n') %}
                {%- endif %}
                {%- if loop.index0 > ns.last_query_index %}
                    {{- '<|im_start|>assistant\n<think>\n\n</think>\n\n' + content + '<|im_end|>\n' }}
                {%- else %}
                    {{- '<|im_start|>assistant\n' + content + '<|im_end|>\n' }}
                {%- endif %}
            {%- endif %}
        {%- endfor %}
        {%- if add_generation_prompt %}
            {{- '<|im_start|>assistant\n' }}
        {%- endif %}
        """;

    private const string Llama2 = """
        {#- Written for GuardSpace's parity check: the Llama-2 [INST] format, system text folded into the first user turn. -#}
        {%- macro wrap_system(text) -%}
        <<SYS>>
        {{ text | trim }}
        <</SYS>>

        {% endmacro -%}
        {%- if messages[0].role == 'system' -%}
            {%- set system = messages[0].content -%}
            {%- set turns = messages[1:] -%}
        {%- else -%}
            {%- set system = none -%}
            {%- set turns = messages -%}
        {%- endif -%}
        {%- for turn in turns -%}
            {%- if (turn.role == 'user') != loop.index0 is even -%}
                {{- raise_exception('Turns must go user, assistant, user, ...') -}}
            {%- endif -%}
            {%- if turn.role == 'user' -%}
                {%- set text = (wrap_system(system) if loop.first and system is not none else '') ~ turn.content | trim -%}
                {{- bos_token ~ '[INST] ' ~ text ~ ' [/INST]' -}}
            {%- else -%}
                {{- ' ' ~ turn.content | trim ~ ' ' ~ eos_token -}}
            {%- endif -%}
        {%- endfor -%}
        """;

    private const string Mistral = """
        {#- Written for GuardSpace's parity check: a Mistral v0.3 / Nemo style template (system text before the last user turn). -#}
        {%- set ns = namespace(system='', users=0) -%}
        {%- for m in messages | selectattr('role', 'equalto', 'system') -%}
            {%- set ns.system = ns.system ~ m.content -%}
        {%- endfor -%}
        {%- set chat = messages | rejectattr('role', 'equalto', 'system') | list -%}
        {{- bos_token -}}
        {%- for m in chat -%}
            {%- if m['role'] == 'user' -%}
                {%- set ns.users = ns.users + 1 -%}
                {%- if loop.revindex <= 2 and ns.system -%}
                    {{- '[INST]' + ns.system + '\n\n' + m['content'] + '[/INST]' -}}
                {%- else -%}
                    {{- '[INST]' + m['content'] + '[/INST]' -}}
                {%- endif -%}
            {%- elif m['role'] == 'assistant' -%}
                {{- m['content'] + eos_token -}}
            {%- else -%}
                {{- raise_exception('Only user and assistant roles after the system prompt, found ' + m['role']) -}}
            {%- endif -%}
        {%- endfor -%}
        """;

    private const string Gemma = """
        {# Written for GuardSpace's parity check: the Gemma turn format; system text becomes part of the first user turn. #}
        {{ bos_token }}
        {%- set offset = 1 if messages[0]['role'] == 'system' else 0 -%}
        {%- for message in messages[offset:] -%}
            {%- if (message['role'] == 'user') != (loop.index0 % 2 == 0) -%}
                {{ raise_exception("Conversation roles must alternate user/assistant/user/assistant/...") }}
            {%- endif -%}
            {%- set role = 'model' if message['role'] == 'assistant' else message['role'] -%}
            {%- set prefix = messages[0]['content'] | trim ~ '\n\n' if offset and loop.first else '' -%}
            {{ '<start_of_turn>' ~ role ~ '\n' ~ prefix ~ message['content'] | trim ~ '<end_of_turn>\n' }}
        {%- endfor -%}
        {%- if add_generation_prompt %}{{ '<start_of_turn>model\n' }}{% endif -%}
        """;

    private static readonly ChatMessage[] Conversation =
    [
        ChatMessage.System("Answer briefly."),
        ChatMessage.User("What is 2+2?"),
        ChatMessage.Assistant("<think>\nadd\n</think>\n\n4"),
        ChatMessage.User("Grüße 🙂"),
    ];

    private readonly TempDirectory _directory = TempDirectory.Create("guardspace-chat-template-");

    public static TheoryData<string, bool, string> Families() => new()
    {
        { Llama3, true, "<s><|start_header_id|>system<|end_header_id|>\n\nAnswer briefly.<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nWhat is 2+2?<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n<think>\nadd\n</think>\n\n4<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nGrüße 🙂<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n" },
        { Llama3, false, "<s><|start_header_id|>system<|end_header_id|>\n\nAnswer briefly.<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nWhat is 2+2?<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n<think>\nadd\n</think>\n\n4<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nGrüße 🙂<|eot_id|>" },
        { ChatMl, true, "<|im_start|>system\nAnswer briefly.<|im_end|>\n<|im_start|>user\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n4<|im_end|>\n<|im_start|>user\nGrüße 🙂<|im_end|>\n<|im_start|>assistant\n" },
        { ChatMl, false, "<|im_start|>system\nAnswer briefly.<|im_end|>\n<|im_start|>user\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n4<|im_end|>\n<|im_start|>user\nGrüße 🙂<|im_end|>\n" },
        { Llama2, true, "<s>[INST] <<SYS>>\nAnswer briefly.\n<</SYS>>\n\nWhat is 2+2? [/INST] <think>\nadd\n</think>\n\n4 </s><s>[INST] Grüße 🙂 [/INST]" },
        { Llama2, false, "<s>[INST] <<SYS>>\nAnswer briefly.\n<</SYS>>\n\nWhat is 2+2? [/INST] <think>\nadd\n</think>\n\n4 </s><s>[INST] Grüße 🙂 [/INST]" },
        { Mistral, true, "<s>[INST]What is 2+2?[/INST]<think>\nadd\n</think>\n\n4</s>[INST]Answer briefly.\n\nGrüße 🙂[/INST]" },
        { Mistral, false, "<s>[INST]What is 2+2?[/INST]<think>\nadd\n</think>\n\n4</s>[INST]Answer briefly.\n\nGrüße 🙂[/INST]" },
        { Gemma, true, "<s><start_of_turn>user\nAnswer briefly.\n\nWhat is 2+2?<end_of_turn>\n<start_of_turn>model\n<think>\nadd\n</think>\n\n4<end_of_turn>\n<start_of_turn>user\nGrüße 🙂<end_of_turn>\n<start_of_turn>model\n" },
        { Gemma, false, "<s><start_of_turn>user\nAnswer briefly.\n\nWhat is 2+2?<end_of_turn>\n<start_of_turn>model\n<think>\nadd\n</think>\n\n4<end_of_turn>\n<start_of_turn>user\nGrüße 🙂<end_of_turn>\n" },
    };

    public static TheoryData<string, string> FirstTurns() => new()
    {
        { Llama3, "<s><|start_header_id|>user<|end_header_id|>\n\nWhat is 2+2?<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n" },
        { ChatMl, "<|im_start|>user\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\n" },
        { Llama2, "<s>[INST] What is 2+2? [/INST]" },
        { Mistral, "<s>[INST]What is 2+2?[/INST]" },
        { Gemma, "<s><start_of_turn>user\nWhat is 2+2?<end_of_turn>\n<start_of_turn>model\n" },
    };

    [Theory]
    [MemberData(nameof(Families))]
    public void RendersEachFamilysFormat(string template, bool addGenerationPrompt, string expected) =>
        Assert.Equal(expected, ChatTemplate.FromText(template, "<s>", "</s>").Apply(Conversation, addGenerationPrompt));

    [Theory]
    [MemberData(nameof(FirstTurns))]
    public void RenderPromptIsTheUserTurnWithTheGenerationPrompt(string template, string expected) =>
        Assert.Equal(expected, ChatTemplate.FromText(template, "<s>", "</s>").RenderPrompt("What is 2+2?"));

    [Fact]
    public void TemplatesThatRequireAlternatingRolesRefuseOthers()
    {
        var twoUsers = new[] { ChatMessage.User("a"), ChatMessage.User("b") };
        foreach (var template in new[] { Gemma, Llama2 })
        {
            Assert.Throws<TemplateRaisedException>(() => ChatTemplate.FromText(template).Apply(twoUsers, addGenerationPrompt: true));
        }

        Assert.Contains("Only user and assistant roles", Assert.Throws<TemplateRaisedException>(() => ChatTemplate.FromText(Mistral).Apply([ChatMessage.User("a"), new ChatMessage("tool", "b")], false)).TemplateMessage, StringComparison.Ordinal);
    }

    [Fact]
    public void RenderExampleSplitsTheConversationWhereTheAnswerStarts()
    {
        var chatMl = ChatTemplate.FromText(ChatMl);
        var (prompt, response) = chatMl.RenderExample("Name a colour.", "Teal.", systemPrompt: "Be brief.");
        Assert.Equal("<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nName a colour.<|im_end|>\n<|im_start|>assistant\n", prompt);
        Assert.Equal("<think>\n\n</think>\n\nTeal.<|im_end|>\n", response);

        // A template whose assistant turn does not continue its generation prompt cannot be split.
        var odd = ChatTemplate.FromText("{% for m in messages %}[{{ m.role }}]{{ m.content }}{% endfor %}{% if add_generation_prompt %}<reply>{% endif %}");
        Assert.Contains("renders the assistant's turn differently", Assert.Throws<InvalidOperationException>(() => odd.RenderExample("q", "a")).Message, StringComparison.Ordinal);
    }

    [Fact]
    public void LoadsTheTemplateAndSpecialTokensFromTokenizerConfig()
    {
        WriteConfig("""{"chat_template": "{{ bos_token }}{% for m in messages %}{{ m.content }}{% endfor %}{{ eos_token }}", "bos_token": {"content": "<s>", "lstrip": false}, "eos_token": "</s>"}""");
        var template = ChatTemplate.Load(_directory);
        Assert.Equal("<s>", template.BosToken);
        Assert.Equal("</s>", template.EosToken);
        Assert.Equal("<s>hi</s>", template.Apply([ChatMessage.User("hi")], addGenerationPrompt: false));
        Assert.EndsWith(ChatTemplate.TokenizerConfigFile, template.Source, StringComparison.Ordinal);

        // chat_template.jinja beside it wins, as in transformers.
        File.WriteAllText(Path.Combine(_directory, ChatTemplate.JinjaFile), "jinja file: {{ messages | length }}\n");
        Assert.Equal("jinja file: 1", ChatTemplate.Load(_directory).Apply([ChatMessage.User("hi")], false));
    }

    [Fact]
    public void PicksANamedTemplateFromAList()
    {
        WriteConfig("""{"chat_template": [{"name": "default", "template": "plain"}, {"name": "tool_use", "template": "tools"}]}""");
        Assert.Equal("plain", ChatTemplate.Load(_directory).Apply([], false));
        Assert.Equal("tools", ChatTemplate.Load(_directory, "tool_use").Apply([], false));
        var unknown = Assert.Throws<InvalidDataException>(() => ChatTemplate.Load(_directory, "rag"));
        Assert.Contains("no chat template named 'rag' (it has: default, tool_use)", unknown.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("""{"eos_token": "</s>"}""", "has no \"chat_template\"")]
    [InlineData("""{"chat_template": 7}""", "must be a string or a list")]
    [InlineData("""{"chat_template": [{"name": "default"}]}""", "needs a string \"name\" and a string \"template\"")]
    [InlineData("""{"chat_template": "x", "bos_token": 3}""", "\"bos_token\" must be a string")]
    [InlineData("""{"chat_template": "x" """, "is not valid JSON")]
    public void MalformedConfigsNameTheFileAndTheField(string json, string message)
    {
        WriteConfig(json);
        var error = Assert.Throws<InvalidDataException>(() => ChatTemplate.Load(_directory));
        Assert.Contains(message, error.Message, StringComparison.Ordinal);
        Assert.Contains(ChatTemplate.TokenizerConfigFile, error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void AnUnsupportedConstructFailsAtLoadNamingTheFileTheConstructAndTheLine()
    {
        WriteConfig("""{"chat_template": "{% for m in messages %}\n{% include 'x' %}{% endfor %}"}""");
        var error = Assert.Throws<TemplateException>(() => ChatTemplate.Load(_directory));
        Assert.Equal(2, error.Line);
        Assert.Contains("'{% include %}' is not supported", error.Message, StringComparison.Ordinal);
        Assert.Contains(ChatTemplate.TokenizerConfigFile, error.Message, StringComparison.Ordinal);
        Assert.Throws<FileNotFoundException>(() => ChatTemplate.Load(Path.Combine(_directory, "absent")));
    }

    [Fact]
    public void ExtraVariablesReachTheTemplate()
    {
        var template = ChatTemplate.FromText("{% if enable_thinking is defined and enable_thinking is false %}no-think{% else %}think{% endif %}");
        Assert.Equal("think", template.Apply([], true));
        Assert.Equal("no-think", template.Apply([], true, new Dictionary<string, object?> { ["enable_thinking"] = false }));
    }

    public void Dispose() => _directory.Dispose();

    private void WriteConfig(string json) => File.WriteAllText(Path.Combine(_directory, ChatTemplate.TokenizerConfigFile), json);
}
