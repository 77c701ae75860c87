package dev.lora4j.tokenizer;

import dev.lora4j.tokenizer.JinjaAst.Node;
import java.util.List;
import java.util.Map;

/**
 * A small Jinja2 interpreter covering what chat templates use, with the environment Hugging Face
 * {@code transformers} renders them in ({@code trim_blocks=True}, {@code lstrip_blocks=True}, loop
 * controls, default undefined). Strings are {@link Str}, which track per char whether they came
 * from the template or from a message.
 *
 * <p>Supported: text, {@code {{ }}}, {@code {% %}}, {@code {# #}}, whitespace control ({@code -},
 * {@code +}); statements {@code if/elif/else}, {@code for} (tuple targets, inline {@code if}
 * filter, {@code else}, {@code loop.*}), {@code set} (also {@code ns.attr} and block set), {@code
 * macro}, {@code break}, {@code continue}, {@code generation}, {@code raw}; expressions with Python
 * semantics: literals, lists, dicts, tuples, attribute and item access, slices, calls, {@code and
 * or not in is}, comparisons, {@code + - * / // % **} and {@code ~}, conditional expressions; the
 * filters, tests, methods and globals chat templates use (see {@link JinjaBuiltins}). Anything else
 * is a {@link ChatTemplateException} naming it.
 *
 * <p>The pieces: {@link JinjaLexer} (template parts, expression tokens), {@link JinjaParser} and
 * {@link JinjaExprParser} (statements and expressions into the {@link JinjaAst} tree), {@link
 * JinjaInterpreter} (runs the tree), {@link JinjaRuntime} (values and their Python semantics) and
 * {@link JinjaBuiltins} (globals, methods, filters, tests).
 */
final class Jinja {
  /** Deepest nesting of expressions or of block statements a template may use. */
  static final int MAX_NESTING = 200;

  /** Most nested macro calls during one render. */
  static final int MAX_CALL_DEPTH = 100;

  /** Longest list range() may build and longest string repetition may make. */
  static final long MAX_SIZE = 1_000_000;

  private final List<Node> root;

  private Jinja(List<Node> root) {
    this.root = root;
  }

  static Jinja compile(String source) {
    JinjaParser parser = new JinjaParser(JinjaLexer.lex(source));
    List<Node> nodes = parser.nodes();
    return new Jinja(nodes);
  }

  /**
   * Renders with the given variables (values already converted: Str, Long, Double, List, Map...).
   */
  Str render(Map<String, Object> vars) {
    return JinjaInterpreter.render(root, vars);
  }
}
