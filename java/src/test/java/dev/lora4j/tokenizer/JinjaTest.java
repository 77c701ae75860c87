package dev.lora4j.tokenizer;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.List;
import org.junit.jupiter.api.Test;

/**
 * The template interpreter against outputs worked out by Jinja2's rules (trim_blocks,
 * lstrip_blocks).
 */
class JinjaTest {

  static final List<ChatMessage> SYS_CONV =
      List.of(
          ChatMessage.system("  You are terse.  "),
          ChatMessage.user("Hi"),
          ChatMessage.assistant("Hello!"),
          ChatMessage.user("Bye"));

  static String render(String template, List<ChatMessage> messages, boolean gen) {
    return ChatTemplate.of(template, "<s>", "</s>").renderString(messages, gen);
  }

  @Test
  void stringsStripAndSliceAsPythonDoes() {
    // strip / trim / split take the no-break spaces and U+0085 as Python's isspace does, and
    // indexing and slicing count code points (an emoji is one; its surrogates were split)
    List<ChatMessage> conv = List.of(ChatMessage.user("\u00a0nbsp a\u0085"));
    assertEquals("[nbsp a]", render("{{ '[' + messages[0]['content']|trim + ']' }}", conv, false));
    assertEquals(
        "[nbsp a]", render("{{ '[' + messages[0]['content'].strip() + ']' }}", conv, false));
    assertEquals("nbsp|a", render("{{ messages[0]['content'].split()|join('|') }}", conv, false));
    List<ChatMessage> emoji = List.of(ChatMessage.user("\ud83e\udd16ab"));
    assertEquals("ab", render("{{ messages[0]['content'][1:3] }}", emoji, false));
    assertEquals("b", render("{{ messages[0]['content'][-1] }}", emoji, false));
    assertEquals("ba\ud83e\udd16", render("{{ messages[0]['content']|reverse }}", emoji, false));
    assertEquals("\ud83e\udd16", render("{{ messages[0]['content'][0] }}", emoji, false));
  }

  @Test
  void chatMlWithDefaultSystemAndGenerationPrompt() {
    // the Qwen2 / ChatML template, as in its tokenizer_config.json
    String t =
        "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}{{"
            + " '<|im_start|>system\\n"
            + "You are a helpful assistant.<|im_end|>\\n"
            + "' }}{% endif %}{{'<|im_start|>' + message['role'] + '\\n"
            + "' + message['content'] + '<|im_end|>' + '\\n"
            + "'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n"
            + "' }}{% endif %}";
    List<ChatMessage> conv = List.of(ChatMessage.user("Hi"), ChatMessage.assistant("Hello!"));
    assertEquals(
        "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n"
            + "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\nHello!<|im_end|>\n",
        render(t, conv, false));
    assertEquals(
        "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n"
            + "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n",
        render(t, conv.subList(0, 1), true));
    // the role is a message field, not template text
    List<Segment> segs = ChatTemplate.of(t, null, null).render(conv.subList(0, 1), false);
    assertEquals(new Segment(Segment.Kind.MESSAGE_FIELD, "user", 0, "user"), segs.get(1));
    assertEquals(new Segment(Segment.Kind.CONTENT, "Hi", 0, "user"), segs.get(3));
  }

  @Test
  void llama2StyleSystemPromptWithSlicingAndTrim() {
    // the Llama-2-chat template: system folded into the first user turn, content|trim
    String t =
        "{% if messages[0]['role'] == 'system' %}{% set loop_messages = messages[1:] %}{% set"
            + " system_message = messages[0]['content'] %}{% else %}{% set loop_messages = messages"
            + " %}{% set system_message = false %}{% endif %}{% for message in loop_messages %}{%"
            + " if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}{{"
            + " raise_exception('Conversation roles must alternate"
            + " user/assistant/user/assistant/...') }}{% endif %}{% if loop.index0 == 0 and"
            + " system_message != false %}{% set content = '<<SYS>>\\n"
            + "' + system_message + '\\n"
            + "<</SYS>>\\n"
            + "\\n"
            + "' + message['content'] %}{% else %}{% set content = message['content'] %}{% endif"
            + " %}{% if message['role'] == 'user' %}{{ bos_token + '[INST] ' + content.strip() + '"
            + " [/INST]' }}{% elif message['role'] == 'assistant' %}{{ ' '  + content.strip() + ' '"
            + " + eos_token }}{% endif %}{% endfor %}";
    assertEquals(
        "<s>[INST] <<SYS>>\n"
            + "  You are terse.  \n"
            + "<</SYS>>\n\n"
            + "Hi [/INST] Hello! </s><s>[INST] Bye [/INST]",
        render(t, SYS_CONV, false));
    // strip() keeps the owners: the system text is message 0's content, "Hello!" message 2's
    List<Segment> segs = ChatTemplate.of(t, "<s>", "</s>").render(SYS_CONV, false);
    assertEquals(new Segment(Segment.Kind.CONTENT, "  You are terse.  ", 0, "system"), segs.get(1));
    assertTrue(segs.contains(new Segment(Segment.Kind.CONTENT, "Hello!", 2, "assistant")));
    ChatTemplateException e =
        assertThrows(
            ChatTemplateException.class,
            () -> render(t, List.of(ChatMessage.system("s"), ChatMessage.assistant("x")), false));
    assertEquals(
        "Conversation roles must alternate user/assistant/user/assistant/...", e.getMessage());
  }

  @Test
  void whitespaceControlTrimAndLstripBlocks() {
    String t =
        "{% for m in messages %}\n"
            + "    {% if m.role == 'user' %}\n"
            + "U: {{ m.content }}\n"
            + "    {%- elif m.role == 'assistant' %}\n"
            + "A: {{ m.content -}}   \n"
            + "    {% else %}\n"
            + "S: {{ m.content|trim }}\n"
            + "    {% endif %}\n"
            + "{% endfor %}\n"
            + "{# a comment #}\n"
            + "end";
    // trim_blocks eats the newline after each tag, lstrip_blocks the indentation before it;
    // "{%-" also eats "U: ...\n"'s newline, "-}}" eats "   \n" after the assistant content
    assertEquals("S: You are terse.\nU: HiA: Hello!U: Byeend", render(t, SYS_CONV, false));
  }

  @Test
  void namespaceLoopVariablesAndFilters() {
    String t =
        "{% set ns = namespace(sys='', n=0) %}{% for m in messages %}{% if m['role'] == 'system'"
            + " %}{% set ns.sys = m['content']|trim %}{% else %}{% set ns.n = ns.n + 1 %}{% endif"
            + " %}{% endfor %}[{{ ns.sys }}]{{ ns.n }}/{{ messages|length }}{% for m in"
            + " messages[1:] if m.role != 'assistant' %}{{ loop.index }}{{ '-' if not loop.last"
            + " else '.' }}{{ m.content|upper }}{% endfor %}{{ ' ' ~ (7 // 2) ~ (7 % 2) ~ (-7 % 3)"
            + " ~ 2 ** 3 }}{% if foo is defined %}X{% elif messages[0].missing is not defined and"
            + " bar is undefined %}Y{% endif %}{{ messages[-1]['content'][::-1] }}{{ ['a',"
            + " 'b']|join(',') }}{{ 'x,y'.split(',')|last }}{{ messages|selectattr('role',"
            + " 'equalto', 'user')|map(attribute='content')|join('+') }}{{ {'k':"
            + " 1}.items()|list|length }}{{ 'abc'.startswith(('z', 'a')) }}{{ none is none }}{%"
            + " macro tag(x, y='!') %}<{{ x }}{{ y }}>{% endmacro %}{{ tag('m') }}{{ tag('n',"
            + " y='?') }}{% for i in range(3) %}{% if i == 1 %}{% continue %}{% endif %}{{ i }}{%"
            + " endfor %}{% for i in range(5) %}{% if i == 2 %}{% break %}{% endif %}{{ i }}{%"
            + " endfor %}{{ '%s' }}{{ \"q\\\"\\n"
            + "\" | tojson }}{{ {'a': [1, 2.5, none, true]} | tojson }}";
    assertEquals(
        "[You are terse.]3/4"
            + "1-HI2.BYE"
            + " 3128"
            + "Y"
            + "eyBa,by"
            + "Hi+Bye"
            + "1True"
            + "True"
            + "<m!><n?>"
            + "02"
            + "01"
            + "%s"
            + "\"q\\\"\\n\""
            + "{\"a\": [1, 2.5, null, true]}",
        render(t, SYS_CONV, false));
  }

  @Test
  void errorsNameTheProblem() {
    ChatTemplateException e =
        assertThrows(
            ChatTemplateException.class,
            () -> ChatTemplate.of("{% for m in messages %}", null, null));
    assertTrue(e.getMessage().contains("endfor"), e.getMessage());
    e =
        assertThrows(
            ChatTemplateException.class,
            () -> render("{{ messages|frobnicate }}", SYS_CONV, false));
    assertTrue(e.getMessage().contains("frobnicate"), e.getMessage());
    e = assertThrows(ChatTemplateException.class, () -> render("{{ 1 + 'a' }}", SYS_CONV, false));
    assertTrue(e.getMessage().contains("unsupported operand"), e.getMessage());
    e =
        assertThrows(
            ChatTemplateException.class,
            () -> render("{{ raise_exception('custom ' ~ messages|length) }}", SYS_CONV, false));
    assertEquals("custom 4", e.getMessage());
  }

  @Test
  void contentTransformedByTemplateStaysMessageText() {
    // replace/upper/tojson on content: the result is still owned by the message
    String t =
        "{% for m in messages %}{{ m.content.replace('e', '</s>') }}|{{ m.content|tojson }}{%"
            + " endfor %}";
    List<Segment> segs =
        ChatTemplate.of(t, null, null).render(List.of(ChatMessage.user("hey")), false);
    assertEquals(
        List.of(
            new Segment(Segment.Kind.CONTENT, "h</s>y", 0, "user"),
            new Segment(Segment.Kind.TEMPLATE, "|", -1, null),
            new Segment(Segment.Kind.CONTENT, "\"hey\"", 0, "user")),
        segs);
  }
}
