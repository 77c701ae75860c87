package dev.lora4j.tokenizer;

import java.time.LocalDateTime;
import java.time.format.DateTimeFormatter;
import java.util.ArrayList;
import java.util.Collection;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Objects;

/**
 * A small Jinja2 interpreter covering what chat templates use, with the environment Hugging Face
 * {@code transformers} renders them in ({@code trim_blocks=True}, {@code lstrip_blocks=True},
 * loop controls, default undefined). Strings are {@link Str}, which track per char whether they
 * came from the template or from a message.
 *
 * <p>Supported: text, {@code {{ }}}, {@code {% %}}, {@code {# #}}, whitespace control
 * ({@code -}, {@code +}); statements {@code if/elif/else}, {@code for} (tuple targets, inline
 * {@code if} filter, {@code else}, {@code loop.*}), {@code set} (also {@code ns.attr} and block
 * set), {@code macro}, {@code break}, {@code continue}, {@code generation}, {@code raw};
 * expressions with Python semantics: literals, lists, dicts, tuples, attribute and item access,
 * slices, calls, {@code and or not in is}, comparisons, {@code + - * / // % **} and {@code ~},
 * conditional expressions; the filters, tests, methods and globals chat templates use (see
 * {@link #filter}, {@link #test}, {@link #method}). Anything else is a {@link ChatTemplateException}
 * naming it.
 */
final class Jinja {

  // =============================================================================================
  // lexing of the template source into text / output / statement parts
  // =============================================================================================

  private enum PartKind { TEXT, OUTPUT, STATEMENT }

  private record Part(PartKind kind, String text, int line) {}

  private static List<Part> lex(String src) {
    List<Part> parts = new ArrayList<>();
    StringBuilder text = new StringBuilder();
    int i = 0;
    int n = src.length();
    boolean stripNextLeading = false;   // a "-" closed the previous tag
    boolean trimNextNewline = false;    // trim_blocks after a block or comment
    while (i < n) {
      int open = findOpen(src, i);
      String chunk = src.substring(i, open < 0 ? n : open);
      if (stripNextLeading) {
        chunk = stripLeading(chunk);
      } else if (trimNextNewline && chunk.startsWith("\n")) {
        chunk = chunk.substring(1);
      } else if (trimNextNewline && chunk.startsWith("\r\n")) {
        chunk = chunk.substring(2);
      }
      stripNextLeading = false;
      trimNextNewline = false;
      if (open < 0) {
        text.append(chunk);
        break;
      }
      char kind = src.charAt(open + 1);
      int p = open + 2;
      char mod = p < n ? src.charAt(p) : 0;
      if (mod == '-') {
        chunk = stripTrailing(chunk);
        p++;
      } else if (mod == '+') {
        p++;
      } else if (kind != '{') {
        // lstrip_blocks: spaces and tabs between the start of a line and a block tag
        int k = 0;
        while (open - k - 1 >= 0 && (src.charAt(open - k - 1) == ' ' || src.charAt(open - k - 1) == '\t')) {
          k++;
        }
        boolean lineStart = open - k == 0 || src.charAt(open - k - 1) == '\n';
        if (lineStart) {
          chunk = chunk.substring(0, Math.max(0, chunk.length() - k));
        }
      }
      text.append(chunk);
      int line = lineOf(src, open);
      if (kind == '#') {
        int close = src.indexOf("#}", p);
        if (close < 0) {
          throw new ChatTemplateException("unclosed comment at line " + line);
        }
        if (src.charAt(close - 1) == '-' && close - 1 >= p) {
          stripNextLeading = true;
        } else {
          trimNextNewline = true;
        }
        i = close + 2;
        continue;
      }
      String closer = kind == '{' ? "}}" : "%}";
      int close = findClose(src, p, closer, line);
      int bodyEnd = close;
      if (src.charAt(close - 1) == '-' && close - 1 >= p) {
        stripNextLeading = true;
        bodyEnd = close - 1;
      } else if (kind == '%') {
        trimNextNewline = true;
      }
      String body = src.substring(p, bodyEnd).trim();
      i = close + 2;
      if (kind == '%' && body.equals("raw")) {
        int end = findEndRaw(src, i, line);
        if (text.length() > 0) {
          parts.add(new Part(PartKind.TEXT, text.toString(), line));
          text.setLength(0);
        }
        String raw = src.substring(i, end);
        int tagEnd = src.indexOf("%}", end) + 2;
        if (src.charAt(end + 2) == '-') {
          raw = stripTrailing(raw);
        }
        if (src.charAt(tagEnd - 3) == '-') {
          stripNextLeading = true;
        } else {
          trimNextNewline = true;
        }
        text.append(raw);
        i = tagEnd;
        continue;
      }
      if (text.length() > 0) {
        parts.add(new Part(PartKind.TEXT, text.toString(), line));
        text.setLength(0);
      }
      parts.add(new Part(kind == '{' ? PartKind.OUTPUT : PartKind.STATEMENT, body, line));
    }
    if (text.length() > 0) {
      parts.add(new Part(PartKind.TEXT, text.toString(), lineOf(src, n)));
    }
    return parts;
  }

  private static int findOpen(String src, int from) {
    for (int i = src.indexOf('{', from); i >= 0 && i + 1 < src.length(); i = src.indexOf('{', i + 1)) {
      char c = src.charAt(i + 1);
      if (c == '{' || c == '%' || c == '#') {
        return i;
      }
    }
    return -1;
  }

  private static int findClose(String src, int from, String closer, int line) {
    int i = from;
    while (i < src.length()) {
      char c = src.charAt(i);
      if (c == '\'' || c == '"') {
        i = skipString(src, i);
        continue;
      }
      if (src.startsWith(closer, i)) {
        return i;
      }
      i++;
    }
    throw new ChatTemplateException("unclosed tag at line " + line + ": expected '" + closer + "'");
  }

  private static int findEndRaw(String src, int from, int line) {
    int i = from;
    while (true) {
      int o = src.indexOf("{%", i);
      if (o < 0) {
        throw new ChatTemplateException("unclosed raw block at line " + line);
      }
      int p = o + 2;
      if (p < src.length() && (src.charAt(p) == '-' || src.charAt(p) == '+')) {
        p++;
      }
      int c = src.indexOf("%}", p);
      if (c < 0) {
        throw new ChatTemplateException("unclosed raw block at line " + line);
      }
      String body = src.substring(p, c).replace("-", "").trim();
      if (body.equals("endraw")) {
        return o;
      }
      i = o + 2;
    }
  }

  private static int skipString(String src, int i) {
    char q = src.charAt(i);
    i++;
    while (i < src.length() && src.charAt(i) != q) {
      if (src.charAt(i) == '\\') {
        i++;
      }
      i++;
    }
    return i + 1;
  }

  private static int lineOf(String src, int pos) {
    int line = 1;
    for (int i = 0; i < pos && i < src.length(); i++) {
      if (src.charAt(i) == '\n') {
        line++;
      }
    }
    return line;
  }

  private static String stripLeading(String s) {
    int k = 0;
    while (k < s.length() && Character.isWhitespace(s.charAt(k))) {
      k++;
    }
    return s.substring(k);
  }

  private static String stripTrailing(String s) {
    int k = s.length();
    while (k > 0 && Character.isWhitespace(s.charAt(k - 1))) {
      k--;
    }
    return s.substring(0, k);
  }

  // =============================================================================================
  // expression tokens
  // =============================================================================================

  private enum T { NAME, STRING, INT, FLOAT, OP, END }

  private record Tok(T type, String text, Object value) {}

  private static final String[] OPS = {"**", "//", "==", "!=", "<=", ">=", "(", ")", "[", "]", "{", "}",
    ",", ".", ":", "|", "~", "+", "-", "*", "/", "%", "<", ">", "=", "!"};

  private static List<Tok> tokenize(String s, int line) {
    List<Tok> out = new ArrayList<>();
    int i = 0;
    while (i < s.length()) {
      char c = s.charAt(i);
      if (Character.isWhitespace(c)) {
        i++;
      } else if (Character.isLetter(c) || c == '_') {
        int j = i;
        while (j < s.length() && (Character.isLetterOrDigit(s.charAt(j)) || s.charAt(j) == '_')) {
          j++;
        }
        out.add(new Tok(T.NAME, s.substring(i, j), null));
        i = j;
      } else if (Character.isDigit(c)) {
        int j = i;
        while (j < s.length() && (Character.isDigit(s.charAt(j)) || s.charAt(j) == '_')) {
          j++;
        }
        boolean isFloat = false;
        if (j + 1 < s.length() && s.charAt(j) == '.' && Character.isDigit(s.charAt(j + 1))) {
          isFloat = true;
          j++;
          while (j < s.length() && Character.isDigit(s.charAt(j))) {
            j++;
          }
        }
        if (j < s.length() && (s.charAt(j) == 'e' || s.charAt(j) == 'E')) {
          isFloat = true;
          j++;
          if (j < s.length() && (s.charAt(j) == '+' || s.charAt(j) == '-')) {
            j++;
          }
          while (j < s.length() && Character.isDigit(s.charAt(j))) {
            j++;
          }
        }
        String num = s.substring(i, j).replace("_", "");
        try {
          out.add(isFloat ? new Tok(T.FLOAT, num, Double.parseDouble(num)) : new Tok(T.INT, num, Long.parseLong(num)));
        } catch (NumberFormatException e) {
          throw new ChatTemplateException("bad number literal '" + num + "' at line " + line
              + (isFloat ? "" : " (integers must fit in 64 bits)"));
        }
        i = j;
      } else if (c == '\'' || c == '"') {
        StringBuilder sb = new StringBuilder();
        int j = i + 1;
        while (j < s.length() && s.charAt(j) != c) {
          char d = s.charAt(j);
          if (d == '\\' && j + 1 < s.length()) {
            char e = s.charAt(++j);
            switch (e) {
              case 'n' -> sb.append('\n');
              case 't' -> sb.append('\t');
              case 'r' -> sb.append('\r');
              case '\\' -> sb.append('\\');
              case '\'' -> sb.append('\'');
              case '"' -> sb.append('"');
              case 'u' -> {
                sb.append((char) hexEscape(s, j + 1, 4, line));
                j += 4;
              }
              case 'x' -> {
                sb.append((char) hexEscape(s, j + 1, 2, line));
                j += 2;
              }
              default -> sb.append('\\').append(e);
            }
          } else {
            sb.append(d);
          }
          j++;
        }
        if (j >= s.length()) {
          throw new ChatTemplateException("unterminated string at line " + line);
        }
        out.add(new Tok(T.STRING, s.substring(i, j + 1), sb.toString()));
        i = j + 1;
      } else {
        String op = null;
        for (String o : OPS) {
          if (s.startsWith(o, i)) {
            op = o;
            break;
          }
        }
        if (op == null) {
          throw new ChatTemplateException("unexpected character '" + c + "' at line " + line);
        }
        out.add(new Tok(T.OP, op, null));
        i += op.length();
      }
    }
    out.add(new Tok(T.END, "", null));
    return out;
  }

  // =============================================================================================
  // syntax tree
  // =============================================================================================

  interface Expr {}

  record Lit(Object value) implements Expr {}

  record Name(String name) implements Expr {}

  record Attr(Expr obj, String name) implements Expr {}

  record Item(Expr obj, Expr key) implements Expr {}

  record Slice(Expr obj, Expr start, Expr stop, Expr step) implements Expr {}

  record Call(Expr fn, List<Expr> args, Map<String, Expr> kwargs) implements Expr {}

  record Filter(Expr obj, String name, List<Expr> args, Map<String, Expr> kwargs) implements Expr {}

  record Test(Expr obj, String name, List<Expr> args, boolean negated) implements Expr {}

  record Bin(String op, Expr l, Expr r) implements Expr {}

  record Unary(String op, Expr e) implements Expr {}

  record Cond(Expr cond, Expr then, Expr otherwise) implements Expr {}

  record ListLit(List<Expr> items, boolean tuple) implements Expr {}

  record DictLit(List<Expr> keys, List<Expr> values) implements Expr {}

  interface Node {}

  record TextNode(Str text) implements Node {}

  record OutNode(Expr e, int line) implements Node {}

  record IfNode(List<Expr> conds, List<List<Node>> bodies, List<Node> orElse) implements Node {}

  record ForNode(List<String> targets, Expr iter, Expr filter, List<Node> body, List<Node> orElse, int line) implements Node {}

  record SetNode(List<String> targets, String attr, Expr value, List<Node> body) implements Node {}

  record MacroNode(String name, List<String> params, List<Expr> defaults, List<Node> body) implements Node {}

  record BreakNode() implements Node {}

  record ContinueNode() implements Node {}

  // =============================================================================================
  // parser
  // =============================================================================================

  /** Deepest nesting of expressions or of block statements a template may use. */
  static final int MAX_NESTING = 200;
  /** Most nested macro calls during one render. */
  static final int MAX_CALL_DEPTH = 100;
  /** Longest list range() may build and longest string repetition may make. */
  static final long MAX_SIZE = 1_000_000;
  /** Nested macro calls of the render running on this thread. */
  private static final ThreadLocal<int[]> CALL_DEPTH = ThreadLocal.withInitial(() -> new int[1]);

  private static int hexEscape(String s, int at, int digits, int line) {
    int v = 0;
    for (int k = 0; k < digits; k++) {
      int d = at + k < s.length() ? Character.digit(s.charAt(at + k), 16) : -1;
      if (d < 0) {
        throw new ChatTemplateException("bad escape in a string literal at line " + line
            + ": expected " + digits + " hex digits");
      }
      v = v * 16 + d;
    }
    return v;
  }

  private static final class ExprParser {
    final List<Tok> toks;
    final int line;
    int p;
    int depth;

    /** counts one level of nesting; the caller decrements {@link #depth} when done */
    void enter() {
      if (++depth > MAX_NESTING) {
        throw new ChatTemplateException("template syntax error at line " + line
            + ": expression nested more than " + MAX_NESTING + " levels deep");
      }
    }

    ExprParser(String src, int line) {
      this.toks = tokenize(src, line);
      this.line = line;
    }

    Tok peek() {
      return toks.get(p);
    }

    Tok next() {
      return toks.get(p++);
    }

    boolean isOp(String op) {
      Tok t = peek();
      return t.type == T.OP && t.text.equals(op);
    }

    boolean isName(String name) {
      Tok t = peek();
      return t.type == T.NAME && t.text.equals(name);
    }

    boolean acceptOp(String op) {
      if (isOp(op)) {
        p++;
        return true;
      }
      return false;
    }

    boolean acceptName(String name) {
      if (isName(name)) {
        p++;
        return true;
      }
      return false;
    }

    void expectOp(String op) {
      if (!acceptOp(op)) {
        throw error("expected '" + op + "'");
      }
    }

    String expectName() {
      Tok t = next();
      if (t.type != T.NAME) {
        p--;
        throw error("expected a name");
      }
      return t.text;
    }

    ChatTemplateException error(String msg) {
      Tok t = peek();
      return new ChatTemplateException("template syntax error at line " + line + ": " + msg
          + (t.type == T.END ? " at end of expression" : " near '" + t.text + "'"));
    }

    void expectEnd() {
      if (peek().type != T.END) {
        throw error("unexpected token");
      }
    }

    Expr expression() {
      enter();
      try {
        return expression0();
      } finally {
        depth--;
      }
    }

    private Expr expression0() {
      Expr e = or();
      if (acceptName("if")) {
        Expr cond = or();
        Expr otherwise = acceptName("else") ? expression() : new Lit(Undefined.INSTANCE);
        return new Cond(cond, e, otherwise);
      }
      return e;
    }

    /** the iterable of a for loop: an expression without a trailing "if ... else" */
    Expr unaryNoCond() {
      return or();
    }

    /** expression, or a bare tuple "a, b" */
    Expr tupleOrExpression() {
      Expr e = expression();
      if (!isOp(",")) {
        return e;
      }
      List<Expr> items = new ArrayList<>(List.of(e));
      while (acceptOp(",")) {
        if (peek().type == T.END) {
          break;
        }
        items.add(expression());
      }
      return new ListLit(items, true);
    }

    // One left-associative level: operand (op operand)*; ops are names ("or", "and") or
    // operator tokens.
    Expr leftAssoc(java.util.function.Supplier<Expr> operand, boolean names, String... ops) {
      Expr e = operand.get();
      while (true) {
        String op = null;
        for (String o : ops) {
          if (names ? isName(o) : isOp(o)) {
            op = o;
            break;
          }
        }
        if (op == null) {
          return e;
        }
        p++;
        e = new Bin(op, e, operand.get());
      }
    }

    Expr or() {
      return leftAssoc(this::and, true, "or");
    }

    Expr and() {
      return leftAssoc(this::not, true, "and");
    }

    Expr not() {
      if (acceptName("not")) {
        enter();
        try {
          return new Unary("not", not());
        } finally {
          depth--;
        }
      }
      return compare();
    }

    Expr compare() {
      Expr e = math1();
      while (true) {
        Tok t = peek();
        if (t.type == T.OP && List.of("==", "!=", "<", ">", "<=", ">=").contains(t.text)) {
          p++;
          e = new Bin(t.text, e, math1());
        } else if (isName("in")) {
          p++;
          e = new Bin("in", e, math1());
        } else if (isName("not") && toks.get(p + 1).type == T.NAME && toks.get(p + 1).text.equals("in")) {
          p += 2;
          e = new Bin("not in", e, math1());
        } else {
          return e;
        }
      }
    }

    Expr math1() {
      return leftAssoc(this::concat, false, "+", "-");
    }

    Expr concat() {
      return leftAssoc(this::math2, false, "~");
    }

    Expr math2() {
      return leftAssoc(this::pow, false, "*", "/", "//", "%");
    }

    Expr pow() {
      return leftAssoc(() -> unary(true), false, "**");
    }

    Expr unary(boolean withFilter) {
      Expr e;
      if (acceptOp("-") || acceptOp("+")) {
        String sign = toks.get(p - 1).text;
        enter();
        try {
          Expr inner = unary(false);
          e = sign.equals("-") ? new Unary("-", inner) : inner;
        } finally {
          depth--;
        }
      } else {
        e = postfix(primary());
      }
      if (withFilter) {
        e = filters(e);
      }
      return e;
    }

    Expr filters(Expr e) {
      while (true) {
        if (acceptOp("|")) {
          String name = dottedName();
          List<Expr> args = new ArrayList<>();
          Map<String, Expr> kwargs = new LinkedHashMap<>();
          if (acceptOp("(")) {
            callArgs(args, kwargs);
          }
          e = new Filter(e, name, args, kwargs);
        } else if (acceptName("is")) {
          boolean neg = acceptName("not");
          String name = dottedName();
          List<Expr> args = new ArrayList<>();
          if (acceptOp("(")) {
            callArgs(args, new LinkedHashMap<>());
          } else {
            Tok t = peek();
            boolean startsArg = t.type == T.STRING || t.type == T.INT || t.type == T.FLOAT
                || t.type == T.NAME && !List.of("and", "or", "else", "if", "in", "not", "is").contains(t.text)
                || t.type == T.OP && (t.text.equals("[") || t.text.equals("{") || t.text.equals("-"));
            if (startsArg) {
              args.add(postfix(primary()));
            }
          }
          e = new Test(e, name, args, neg);
        } else if (acceptOp("(")) {
          List<Expr> args = new ArrayList<>();
          Map<String, Expr> kwargs = new LinkedHashMap<>();
          callArgs(args, kwargs);
          e = new Call(e, args, kwargs);
        } else {
          return e;
        }
      }
    }

    String dottedName() {
      StringBuilder sb = new StringBuilder(expectName());
      while (isOp(".") && toks.get(p + 1).type == T.NAME) {
        p++;
        sb.append('.').append(expectName());
      }
      return sb.toString();
    }

    /** after "(": arguments up to and including ")" */
    void callArgs(List<Expr> args, Map<String, Expr> kwargs) {
      while (!acceptOp(")")) {
        if (peek().type == T.NAME && toks.get(p + 1).type == T.OP && toks.get(p + 1).text.equals("=")) {
          String k = next().text;
          p++;
          kwargs.put(k, expression());
        } else {
          if (!kwargs.isEmpty()) {
            throw error("positional argument after keyword argument");
          }
          args.add(expression());
        }
        if (!acceptOp(",")) {
          expectOp(")");
          return;
        }
      }
    }

    Expr primary() {
      Tok t = next();
      switch (t.type) {
        case NAME -> {
          return switch (t.text) {
            case "true", "True" -> new Lit(Boolean.TRUE);
            case "false", "False" -> new Lit(Boolean.FALSE);
            case "none", "None" -> new Lit(null);
            default -> new Name(t.text);
          };
        }
        case STRING -> {
          StringBuilder sb = new StringBuilder((String) t.value);
          while (peek().type == T.STRING) {
            sb.append((String) next().value);
          }
          return new Lit(Str.of(sb.toString()));
        }
        case INT, FLOAT -> {
          return new Lit(t.value);
        }
        case OP -> {
          switch (t.text) {
            case "(" -> {
              if (acceptOp(")")) {
                return new ListLit(List.of(), true);
              }
              Expr e = expression();
              if (isOp(",")) {
                List<Expr> items = new ArrayList<>(List.of(e));
                while (acceptOp(",")) {
                  if (isOp(")")) {
                    break;
                  }
                  items.add(expression());
                }
                expectOp(")");
                return new ListLit(items, true);
              }
              expectOp(")");
              return e;
            }
            case "[" -> {
              List<Expr> items = new ArrayList<>();
              while (!acceptOp("]")) {
                items.add(expression());
                if (!acceptOp(",")) {
                  expectOp("]");
                  break;
                }
              }
              return new ListLit(items, false);
            }
            case "{" -> {
              List<Expr> keys = new ArrayList<>();
              List<Expr> values = new ArrayList<>();
              while (!acceptOp("}")) {
                keys.add(expression());
                expectOp(":");
                values.add(expression());
                if (!acceptOp(",")) {
                  expectOp("}");
                  break;
                }
              }
              return new DictLit(keys, values);
            }
            default -> {
            }
          }
        }
        default -> {
        }
      }
      p--;
      throw error("unexpected token");
    }

    Expr postfix(Expr e) {
      while (true) {
        if (acceptOp(".")) {
          Tok t = next();
          if (t.type == T.NAME) {
            e = new Attr(e, t.text);
          } else if (t.type == T.INT) {
            e = new Item(e, new Lit(t.value));
          } else {
            p--;
            throw error("expected an attribute name");
          }
        } else if (acceptOp("[")) {
          Expr start = null;
          if (!isOp(":")) {
            start = expression();
            if (acceptOp("]")) {
              e = new Item(e, start);
              continue;
            }
          }
          expectOp(":");
          Expr stop = isOp(":") || isOp("]") ? null : expression();
          Expr step = null;
          if (acceptOp(":")) {
            step = isOp("]") ? null : expression();
          }
          expectOp("]");
          e = new Slice(e, start, stop, step);
        } else if (acceptOp("(")) {
          List<Expr> args = new ArrayList<>();
          Map<String, Expr> kwargs = new LinkedHashMap<>();
          callArgs(args, kwargs);
          e = new Call(e, args, kwargs);
        } else {
          return e;
        }
      }
    }
  }

  private static final class Parser {
    final List<Part> parts;
    int p;

    private int depth;

    Parser(List<Part> parts) {
      this.parts = parts;
    }

    /** parses nodes until a statement whose first word is in {@code stops}; leaves p on it */
    List<Node> nodes(String... stops) {
      if (++depth > MAX_NESTING) {
        throw new ChatTemplateException("template syntax error: blocks nested more than "
            + MAX_NESTING + " levels deep");
      }
      try {
        return nodes0(stops);
      } finally {
        depth--;
      }
    }

    private List<Node> nodes0(String... stops) {
      List<Node> out = new ArrayList<>();
      while (p < parts.size()) {
        Part part = parts.get(p);
        switch (part.kind) {
          case TEXT -> {
            out.add(new TextNode(Str.of(part.text)));
            p++;
          }
          case OUTPUT -> {
            ExprParser ep = new ExprParser(part.text, part.line);
            Expr e = ep.expression();
            ep.expectEnd();
            out.add(new OutNode(e, part.line));
            p++;
          }
          case STATEMENT -> {
            String word = firstWord(part.text);
            for (String s : stops) {
              if (s.equals(word)) {
                return out;
              }
            }
            out.add(statement(part, word));
          }
          default -> throw new IllegalStateException();
        }
      }
      if (stops.length > 0) {
        throw new ChatTemplateException("template syntax error: missing {% " + stops[stops.length - 1] + " %}");
      }
      return out;
    }

    static String firstWord(String s) {
      int i = 0;
      while (i < s.length() && (Character.isLetterOrDigit(s.charAt(i)) || s.charAt(i) == '_')) {
        i++;
      }
      return s.substring(0, i);
    }

    Node statement(Part part, String word) {
      String rest = part.text.substring(word.length());
      int line = part.line;
      p++;
      switch (word) {
        case "if" -> {
          List<Expr> conds = new ArrayList<>();
          List<List<Node>> bodies = new ArrayList<>();
          conds.add(parseExpr(rest, line));
          List<Node> orElse = List.of();
          while (true) {
            bodies.add(nodes("elif", "else", "endif"));
            Part stop = parts.get(p++);
            String w = firstWord(stop.text);
            if (w.equals("elif")) {
              conds.add(parseExpr(stop.text.substring(4), stop.line));
            } else if (w.equals("else")) {
              orElse = nodes("endif");
              p++;
              break;
            } else {
              break;
            }
          }
          return new IfNode(conds, bodies, orElse);
        }
        case "for" -> {
          ExprParser ep = new ExprParser(rest, line);
          List<String> targets = new ArrayList<>();
          boolean paren = ep.acceptOp("(");
          targets.add(ep.expectName());
          while (ep.acceptOp(",")) {
            targets.add(ep.expectName());
          }
          if (paren) {
            ep.expectOp(")");
          }
          if (!ep.acceptName("in")) {
            throw ep.error("expected 'in'");
          }
          Expr iter = ep.unaryNoCond();
          Expr filter = null;
          if (ep.acceptName("if")) {
            filter = ep.expression();
          }
          if (ep.acceptName("recursive")) {
            throw new ChatTemplateException("recursive loops are not supported (line " + line + ")");
          }
          ep.expectEnd();
          List<Node> body = nodes("else", "endfor");
          List<Node> orElse = List.of();
          if (firstWord(parts.get(p++).text).equals("else")) {
            orElse = nodes("endfor");
            p++;
          }
          return new ForNode(targets, iter, filter, body, orElse, line);
        }
        case "set" -> {
          ExprParser ep = new ExprParser(rest, line);
          List<String> targets = new ArrayList<>();
          targets.add(ep.expectName());
          String attr = null;
          if (ep.acceptOp(".")) {
            attr = ep.expectName();
          }
          while (ep.acceptOp(",")) {
            targets.add(ep.expectName());
          }
          if (ep.acceptOp("=")) {
            Expr value = ep.tupleOrExpression();
            ep.expectEnd();
            return new SetNode(targets, attr, value, null);
          }
          ep.expectEnd();
          List<Node> body = nodes("endset");
          p++;
          return new SetNode(targets, attr, null, body);
        }
        case "macro" -> {
          ExprParser ep = new ExprParser(rest, line);
          String name = ep.expectName();
          List<String> params = new ArrayList<>();
          List<Expr> defaults = new ArrayList<>();
          ep.expectOp("(");
          while (!ep.acceptOp(")")) {
            params.add(ep.expectName());
            defaults.add(ep.acceptOp("=") ? ep.expression() : null);
            if (!ep.acceptOp(",")) {
              ep.expectOp(")");
              break;
            }
          }
          ep.expectEnd();
          List<Node> body = nodes("endmacro");
          p++;
          return new MacroNode(name, params, defaults, body);
        }
        case "generation" -> {
          List<Node> body = nodes("endgeneration");
          p++;
          return new IfNode(List.of(new Lit(Boolean.TRUE)), List.of(body), List.of());
        }
        case "break" -> {
          return new BreakNode();
        }
        case "continue" -> {
          return new ContinueNode();
        }
        default -> throw new ChatTemplateException("unsupported template statement '{% " + part.text
            + " %}' at line " + line);
      }
    }

    static Expr parseExpr(String src, int line) {
      ExprParser ep = new ExprParser(src, line);
      Expr e = ep.expression();
      ep.expectEnd();
      return e;
    }
  }

  // =============================================================================================
  // runtime values
  // =============================================================================================

  /** Jinja's default Undefined: prints as "", is falsy, iterates as empty. */
  static final class Undefined {
    static final Undefined INSTANCE = new Undefined();

    @Override
    public String toString() {
      return "";
    }
  }

  /** A callable value: globals, macros, bound methods. */
  interface Fn {
    Object call(List<Object> args, Map<String, Object> kwargs);
  }

  /** The object {@code namespace()} returns: attributes assignable from inner scopes. */
  static final class Namespace extends LinkedHashMap<String, Object> {
    private static final long serialVersionUID = 1L;
  }

  /** Call arguments: asking for one that was not given is a template error, not a crash. */
  private static final class Args extends ArrayList<Object> {
    private static final long serialVersionUID = 1L;
    private final String callee;

    Args(String callee) {
      this.callee = callee;
    }

    @Override
    public Object get(int i) {
      if (i < 0 || i >= size()) {
        throw new ChatTemplateException(callee + " needs argument " + (i + 1) + " but got "
            + size());
      }
      return super.get(i);
    }
  }

  private static final class BreakSignal extends RuntimeException {
    private static final long serialVersionUID = 1L;

    BreakSignal() {
      super(null, null, false, false);
    }
  }

  private static final class ContinueSignal extends RuntimeException {
    private static final long serialVersionUID = 1L;

    ContinueSignal() {
      super(null, null, false, false);
    }
  }

  private static final class Scope {
    final Scope parent;
    final Map<String, Object> vars = new HashMap<>();

    Scope(Scope parent) {
      this.parent = parent;
    }

    Object get(String name) {
      for (Scope s = this; s != null; s = s.parent) {
        if (s.vars.containsKey(name)) {
          return s.vars.get(name);
        }
      }
      return Undefined.INSTANCE;
    }
  }

  /** The rendered output: text plus the owner of every char. */
  static final class Out {
    final StringBuilder sb = new StringBuilder();
    Tokenizer.IntList own = new Tokenizer.IntList(256);

    void append(Str s) {
      sb.append(s.s);
      for (int i = 0; i < s.length(); i++) {
        own.add(s.ownerAt(i));
      }
    }

    Str toStr() {
      return new Str(sb.toString(), own.toArray());
    }
  }

  // =============================================================================================
  // the compiled template
  // =============================================================================================

  private final List<Node> root;

  private Jinja(List<Node> root) {
    this.root = root;
  }

  static Jinja compile(String source) {
    Parser parser = new Parser(lex(source));
    List<Node> nodes = parser.nodes();
    return new Jinja(nodes);
  }

  /** Renders with the given variables (values already converted: Str, Long, Double, List, Map...). */
  Str render(Map<String, Object> vars) {
    Scope globals = new Scope(null);
    globals.vars.put("range", (Fn) (a, k) -> range(a));
    globals.vars.put("namespace", (Fn) (a, k) -> {
      Namespace ns = new Namespace();
      for (Object o : a) {
        if (o instanceof Map<?, ?> m) {
          m.forEach((kk, vv) -> ns.put(String.valueOf(kk), vv));
        }
      }
      ns.putAll(k);
      return ns;
    });
    globals.vars.put("raise_exception", (Fn) (a, k) -> {
      throw new ChatTemplateException(a.isEmpty() ? "raise_exception() called" : str(a.get(0)).s);
    });
    globals.vars.put("strftime_now", (Fn) (a, k) -> {
      if (a.size() != 1) {
        throw new ChatTemplateException("strftime_now() takes one format argument, got " + a.size());
      }
      return Str.of(strftime(LocalDateTime.now(), str(a.get(0)).s));
    });
    globals.vars.put("dict", (Fn) (a, k) -> new LinkedHashMap<String, Object>(k));
    Scope scope = new Scope(globals);
    scope.vars.putAll(vars);
    Out out = new Out();
    try {
      exec(root, scope, out);
    } catch (BreakSignal | ContinueSignal outside) {
      throw new ChatTemplateException("{% break %} or {% continue %} outside a for loop");
    }
    return out.toStr();
  }

  private void exec(List<Node> nodes, Scope scope, Out out) {
    for (Node n : nodes) {
      exec(n, scope, out);
    }
  }

  private void exec(Node node, Scope scope, Out out) {
    if (node instanceof TextNode t) {
      out.append(t.text);
    } else if (node instanceof OutNode o) {
      out.append(str(eval(o.e, scope)));
    } else if (node instanceof IfNode f) {
      for (int i = 0; i < f.conds.size(); i++) {
        if (truthy(eval(f.conds.get(i), scope))) {
          exec(f.bodies.get(i), scope, out);
          return;
        }
      }
      exec(f.orElse, scope, out);
    } else if (node instanceof ForNode f) {
      execFor(f, scope, out);
    } else if (node instanceof SetNode s) {
      Object value;
      if (s.body != null) {
        Out inner = new Out();
        exec(s.body, scope, inner);
        value = inner.toStr();
      } else {
        value = eval(s.value, scope);
      }
      if (s.attr != null) {
        Object ns = scope.get(s.targets.get(0));
        if (!(ns instanceof Namespace nsm)) {
          throw new ChatTemplateException("cannot assign attribute '" + s.attr + "' of '" + s.targets.get(0)
              + "': not a namespace");
        }
        nsm.put(s.attr, value);
      } else if (s.targets.size() == 1) {
        scope.vars.put(s.targets.get(0), value);
      } else {
        List<Object> vals = iterate(value);
        if (vals.size() != s.targets.size()) {
          throw new ChatTemplateException("cannot unpack " + vals.size() + " values into " + s.targets.size());
        }
        for (int i = 0; i < vals.size(); i++) {
          scope.vars.put(s.targets.get(i), vals.get(i));
        }
      }
    } else if (node instanceof MacroNode m) {
      Scope defScope = scope;
      scope.vars.put(m.name, (Fn) (args, kwargs) -> {
        Scope ms = new Scope(defScope);
        for (int i = 0; i < m.params.size(); i++) {
          String pn = m.params.get(i);
          Object v;
          if (i < args.size()) {
            v = args.get(i);
          } else if (kwargs.containsKey(pn)) {
            v = kwargs.get(pn);
          } else if (m.defaults.get(i) != null) {
            v = eval(m.defaults.get(i), ms);
          } else {
            v = Undefined.INSTANCE;
          }
          ms.vars.put(pn, v);
        }
        Out inner = new Out();
        int[] calls = CALL_DEPTH.get();
        if (++calls[0] > MAX_CALL_DEPTH) {
          calls[0] = 0;
          throw new ChatTemplateException("macro '" + m.name + "' called more than "
              + MAX_CALL_DEPTH + " levels deep (runaway recursion?)");
        }
        try {
          exec(m.body, ms, inner);
        } finally {
          calls[0] = Math.max(0, calls[0] - 1);
        }
        return inner.toStr();
      });
    } else if (node instanceof BreakNode) {
      throw new BreakSignal();
    } else if (node instanceof ContinueNode) {
      throw new ContinueSignal();
    }
  }

  private void execFor(ForNode f, Scope scope, Out out) {
    List<Object> items = iterate(eval(f.iter, scope));
    if (f.filter != null) {
      List<Object> kept = new ArrayList<>();
      for (Object it : items) {
        Scope fs = new Scope(scope);
        bindTargets(f, fs, it);
        if (truthy(eval(f.filter, fs))) {
          kept.add(it);
        }
      }
      items = kept;
    }
    if (items.isEmpty()) {
      exec(f.orElse, scope, out);
      return;
    }
    int n = items.size();
    for (int i = 0; i < n; i++) {
      Scope ls = new Scope(scope);
      bindTargets(f, ls, items.get(i));
      Map<String, Object> loop = new HashMap<>();
      loop.put("index", (long) (i + 1));
      loop.put("index0", (long) i);
      loop.put("revindex", (long) (n - i));
      loop.put("revindex0", (long) (n - i - 1));
      loop.put("first", i == 0);
      loop.put("last", i == n - 1);
      loop.put("length", (long) n);
      loop.put("previtem", i > 0 ? items.get(i - 1) : Undefined.INSTANCE);
      loop.put("nextitem", i < n - 1 ? items.get(i + 1) : Undefined.INSTANCE);
      final int idx = i;
      loop.put("cycle", (Fn) (a, k) -> a.get(idx % a.size()));
      ls.vars.put("loop", loop);
      try {
        exec(f.body, ls, out);
      } catch (BreakSignal b) {
        break;
      } catch (ContinueSignal c) {
        // next item
      }
    }
  }

  private static void bindTargets(ForNode f, Scope s, Object item) {
    if (f.targets.size() == 1) {
      s.vars.put(f.targets.get(0), item);
      return;
    }
    List<Object> vals = iterate(item);
    if (vals.size() != f.targets.size()) {
      throw new ChatTemplateException("cannot unpack " + vals.size() + " values into " + f.targets.size()
          + " loop variables (line " + f.line + ")");
    }
    for (int i = 0; i < vals.size(); i++) {
      s.vars.put(f.targets.get(i), vals.get(i));
    }
  }

  // =============================================================================================
  // expressions
  // =============================================================================================

  private Object eval(Expr e, Scope scope) {
    if (e instanceof Lit l) {
      return l.value;
    }
    if (e instanceof Name n) {
      return scope.get(n.name);
    }
    if (e instanceof Attr a) {
      return getAttr(eval(a.obj, scope), a.name);
    }
    if (e instanceof Item it) {
      return getItem(eval(it.obj, scope), eval(it.key, scope));
    }
    if (e instanceof Slice s) {
      return slice(eval(s.obj, scope), s.start == null ? null : eval(s.start, scope),
          s.stop == null ? null : eval(s.stop, scope), s.step == null ? null : eval(s.step, scope));
    }
    if (e instanceof Call c) {
      Object fn = eval(c.fn, scope);
      List<Object> args = new Args(describe(c.fn) + "()");
      for (Expr x : c.args) {
        args.add(eval(x, scope));
      }
      Map<String, Object> kwargs = new LinkedHashMap<>();
      c.kwargs.forEach((k, v) -> kwargs.put(k, eval(v, scope)));
      if (!(fn instanceof Fn f)) {
        throw new ChatTemplateException("'" + describe(c.fn) + "' is not callable");
      }
      return f.call(args, kwargs);
    }
    if (e instanceof Filter f) {
      Object v = eval(f.obj, scope);
      List<Object> args = new Args("filter '" + f.name + "'");
      for (Expr x : f.args) {
        args.add(eval(x, scope));
      }
      Map<String, Object> kwargs = new LinkedHashMap<>();
      f.kwargs.forEach((k, x) -> kwargs.put(k, eval(x, scope)));
      return filter(f.name, v, args, kwargs);
    }
    if (e instanceof Test t) {
      Object v = t.name.equals("defined") || t.name.equals("undefined") ? evalQuiet(t.obj, scope) : eval(t.obj, scope);
      List<Object> args = new Args("test '" + t.name + "'");
      for (Expr x : t.args) {
        args.add(eval(x, scope));
      }
      return test(t.name, v, args) != t.negated;
    }
    if (e instanceof Unary u) {
      Object v = eval(u.e, scope);
      if (u.op.equals("not")) {
        return !truthy(v);
      }
      if (v instanceof Long l) {
        return -l;
      }
      if (v instanceof Double d) {
        return -d;
      }
      throw new ChatTemplateException("bad operand for unary -: " + typeName(v));
    }
    if (e instanceof Cond c) {
      return truthy(eval(c.cond, scope)) ? eval(c.then, scope) : eval(c.otherwise, scope);
    }
    if (e instanceof ListLit l) {
      List<Object> out = new ArrayList<>();
      for (Expr x : l.items) {
        out.add(eval(x, scope));
      }
      return out;
    }
    if (e instanceof DictLit d) {
      Map<String, Object> out = new LinkedHashMap<>();
      for (int i = 0; i < d.keys.size(); i++) {
        out.put(str(eval(d.keys.get(i), scope)).s, eval(d.values.get(i), scope));
      }
      return out;
    }
    if (e instanceof Bin b) {
      if (b.op.equals("and")) {
        Object l = eval(b.l, scope);
        return truthy(l) ? eval(b.r, scope) : l;
      }
      if (b.op.equals("or")) {
        Object l = eval(b.l, scope);
        return truthy(l) ? l : eval(b.r, scope);
      }
      return binary(b.op, eval(b.l, scope), eval(b.r, scope));
    }
    throw new IllegalStateException("unknown expression " + e);
  }

  /** evaluates for "is defined": a missing attribute of an undefined value is undefined, not an error */
  private Object evalQuiet(Expr e, Scope scope) {
    try {
      return eval(e, scope);
    } catch (ChatTemplateException ex) {
      if (e instanceof Attr || e instanceof Item) {
        return Undefined.INSTANCE;
      }
      throw ex;
    }
  }

  private static String describe(Expr e) {
    if (e instanceof Name n) {
      return n.name;
    }
    if (e instanceof Attr a) {
      return describe(a.obj) + "." + a.name;
    }
    return "expression";
  }

  private static Object binary(String op, Object l, Object r) {
    switch (op) {
      case "==":
        return pyEquals(l, r);
      case "!=":
        return !pyEquals(l, r);
      case "<":
        return compare(l, r) < 0;
      case ">":
        return compare(l, r) > 0;
      case "<=":
        return compare(l, r) <= 0;
      case ">=":
        return compare(l, r) >= 0;
      case "in":
        return contains(r, l);
      case "not in":
        return !contains(r, l);
      case "~":
        return str(l).concat(str(r));
      case "+":
        if (l instanceof Str a && r instanceof Str b) {
          return a.concat(b);
        }
        if (l instanceof List<?> a && r instanceof List<?> b) {
          List<Object> out = new ArrayList<>(a);
          out.addAll(b);
          return out;
        }
        break;
      case "*":
        if (l instanceof Str a && r instanceof Long k) {
          if (k > 0 && a.length() > 0 && k > MAX_SIZE / a.length()) {
            throw new ChatTemplateException("string repetition would make " + k + " copies of "
                + a.length() + " chars; the limit is " + MAX_SIZE + " chars");
          }
          Str out = Str.EMPTY;
          Str pow = a; // a repeated 2^bit times: O(result * log k), not O(result * k)
          for (long n = k; n > 0; n >>= 1) {
            if ((n & 1) != 0) {
              out = out.concat(pow);
            }
            if (n > 1) {
              pow = pow.concat(pow);
            }
          }
          return out;
        }
        break;
      default:
        break;
    }
    if (isNumber(l) && isNumber(r)) {
      boolean ints = !(l instanceof Double) && !(r instanceof Double);
      double a = toDouble(l);
      double b = toDouble(r);
      switch (op) {
        case "+":
          return ints ? (Object) (toLong(l) + toLong(r)) : (Object) (a + b);
        case "-":
          return ints ? (Object) (toLong(l) - toLong(r)) : (Object) (a - b);
        case "*":
          return ints ? (Object) (toLong(l) * toLong(r)) : (Object) (a * b);
        case "/":
          if (b == 0) {
            throw new ChatTemplateException("division by zero");
          }
          return a / b;
        case "//":
          if (b == 0) {
            throw new ChatTemplateException("division by zero");
          }
          return ints ? (Object) Math.floorDiv(toLong(l), toLong(r)) : (Object) Math.floor(a / b);
        case "%":
          if (b == 0) {
            throw new ChatTemplateException("modulo by zero");
          }
          return ints ? (Object) Math.floorMod(toLong(l), toLong(r)) : (Object) (a - Math.floor(a / b) * b);
        case "**":
          return ints && toLong(r) >= 0 ? (Object) (long) Math.pow(a, b) : (Object) Math.pow(a, b);
        default:
          break;
      }
    }
    throw new ChatTemplateException("unsupported operand types for " + op + ": " + typeName(l) + " and " + typeName(r));
  }

  // =============================================================================================
  // Python-like semantics
  // =============================================================================================

  static boolean isNumber(Object o) {
    return o instanceof Long || o instanceof Double || o instanceof Integer || o instanceof Boolean;
  }

  static double toDouble(Object o) {
    if (o instanceof Boolean b) {
      return b ? 1 : 0;
    }
    return ((Number) o).doubleValue();
  }

  static long toLong(Object o) {
    if (o instanceof Boolean b) {
      return b ? 1 : 0;
    }
    return ((Number) o).longValue();
  }

  static String typeName(Object o) {
    if (o == null) {
      return "NoneType";
    }
    if (o instanceof Undefined) {
      return "Undefined";
    }
    if (o instanceof Str) {
      return "str";
    }
    if (o instanceof Long || o instanceof Integer) {
      return "int";
    }
    if (o instanceof Double) {
      return "float";
    }
    if (o instanceof Boolean) {
      return "bool";
    }
    if (o instanceof List) {
      return "list";
    }
    if (o instanceof Map) {
      return "dict";
    }
    return o.getClass().getSimpleName();
  }

  static boolean truthy(Object o) {
    if (o == null || o instanceof Undefined) {
      return false;
    }
    if (o instanceof Boolean b) {
      return b;
    }
    if (o instanceof Str s) {
      return !s.s.isEmpty();
    }
    if (o instanceof Long l) {
      return l != 0;
    }
    if (o instanceof Double d) {
      return d != 0;
    }
    if (o instanceof Collection<?> c) {
      return !c.isEmpty();
    }
    if (o instanceof Map<?, ?> m) {
      return !m.isEmpty();
    }
    return true;
  }

  static boolean pyEquals(Object a, Object b) {
    if (a instanceof Undefined || b instanceof Undefined) {
      return a == b;
    }
    if (isNumber(a) && isNumber(b)) {
      return toDouble(a) == toDouble(b);
    }
    if (a instanceof List<?> x && b instanceof List<?> y) {
      if (x.size() != y.size()) {
        return false;
      }
      for (int i = 0; i < x.size(); i++) {
        if (!pyEquals(x.get(i), y.get(i))) {
          return false;
        }
      }
      return true;
    }
    return Objects.equals(a, b);
  }

  static int compare(Object a, Object b) {
    if (isNumber(a) && isNumber(b)) {
      return Double.compare(toDouble(a), toDouble(b));
    }
    if (a instanceof Str x && b instanceof Str y) {
      return x.compareTo(y);
    }
    throw new ChatTemplateException("cannot compare " + typeName(a) + " with " + typeName(b));
  }

  static boolean contains(Object container, Object item) {
    if (container instanceof Str s) {
      return s.s.contains(str(item).s);
    }
    if (container instanceof Map<?, ?> m) {
      return item instanceof Str k && m.containsKey(k.s);
    }
    if (container instanceof List<?> l) {
      for (Object o : l) {
        if (pyEquals(o, item)) {
          return true;
        }
      }
      return false;
    }
    if (container instanceof Undefined) {
      return false;
    }
    throw new ChatTemplateException("argument of type '" + typeName(container) + "' is not iterable");
  }

  static List<Object> iterate(Object o) {
    if (o instanceof List<?> l) {
      return new ArrayList<>(l);
    }
    if (o instanceof Map<?, ?> m) {
      List<Object> keys = new ArrayList<>();
      for (Object k : m.keySet()) {
        keys.add(Str.of(String.valueOf(k)));
      }
      return keys;
    }
    if (o instanceof Str s) {
      List<Object> chars = new ArrayList<>();
      for (int i = 0; i < s.length(); i++) {
        chars.add(s.sub(i, i + 1));
      }
      return chars;
    }
    if (o == null || o instanceof Undefined) {
      if (o == null) {
        throw new ChatTemplateException("'NoneType' object is not iterable");
      }
      return List.of();
    }
    throw new ChatTemplateException("'" + typeName(o) + "' object is not iterable");
  }

  /** str(x) as Python prints it; message text keeps its owners. */
  static Str str(Object o) {
    if (o instanceof Str s) {
      return s;
    }
    if (o == null) {
      return Str.of("None");
    }
    if (o instanceof Undefined) {
      return Str.EMPTY;
    }
    if (o instanceof Boolean b) {
      return Str.of(b ? "True" : "False");
    }
    if (o instanceof Double d) {
      return Str.of(pyFloat(d));
    }
    if (o instanceof Number n) {
      return Str.of(String.valueOf(n.longValue()));
    }
    if (o instanceof List<?> || o instanceof Map<?, ?>) {
      StringBuilder sb = new StringBuilder();
      List<Str> sources = new ArrayList<>();
      repr(o, sb, sources);
      return Str.taint(sb.toString(), sources.toArray(new Str[0]));
    }
    return Str.of(String.valueOf(o));
  }

  private static String pyFloat(double d) {
    if (d == Math.rint(d) && !Double.isInfinite(d) && Math.abs(d) < 1e16) {
      return String.valueOf((long) d) + ".0";
    }
    return String.valueOf(d);
  }

  private static void repr(Object o, StringBuilder sb, List<Str> sources) {
    if (o instanceof Str s) {
      sources.add(s);
      sb.append('\'').append(s.s.replace("\\", "\\\\").replace("'", "\\'").replace("\n", "\\n")).append('\'');
    } else if (o instanceof List<?> l) {
      sb.append('[');
      for (int i = 0; i < l.size(); i++) {
        if (i > 0) {
          sb.append(", ");
        }
        repr(l.get(i), sb, sources);
      }
      sb.append(']');
    } else if (o instanceof Map<?, ?> m) {
      sb.append('{');
      boolean first = true;
      for (Map.Entry<?, ?> e : m.entrySet()) {
        if (!first) {
          sb.append(", ");
        }
        first = false;
        repr(Str.of(String.valueOf(e.getKey())), sb, sources);
        sb.append(": ");
        repr(e.getValue(), sb, sources);
      }
      sb.append('}');
    } else {
      sb.append(str(o).s);
    }
  }

  private static void toJson(Object o, StringBuilder sb, List<Str> sources, Integer indent, int depth) {
    if (o == null || o instanceof Undefined) {
      sb.append("null");
    } else if (o instanceof Boolean b) {
      sb.append(b ? "true" : "false");
    } else if (o instanceof Double d) {
      sb.append(pyFloat(d));
    } else if (o instanceof Number n) {
      sb.append(n.longValue());
    } else if (o instanceof Str s) {
      sources.add(s);
      sb.append('"');
      for (int i = 0; i < s.s.length(); i++) {
        char c = s.s.charAt(i);
        switch (c) {
          case '"' -> sb.append("\\\"");
          case '\\' -> sb.append("\\\\");
          case '\n' -> sb.append("\\n");
          case '\r' -> sb.append("\\r");
          case '\t' -> sb.append("\\t");
          case '\b' -> sb.append("\\b");
          case '\f' -> sb.append("\\f");
          default -> {
            if (c < 0x20) {
              sb.append(String.format("\\u%04x", (int) c));
            } else {
              sb.append(c);
            }
          }
        }
      }
      sb.append('"');
    } else if (o instanceof List<?> l) {
      if (l.isEmpty()) {
        sb.append("[]");
        return;
      }
      sb.append('[');
      for (int i = 0; i < l.size(); i++) {
        if (i > 0) {
          sb.append(indent == null ? ", " : ",");
        }
        newline(sb, indent, depth + 1);
        toJson(l.get(i), sb, sources, indent, depth + 1);
      }
      newline(sb, indent, depth);
      sb.append(']');
    } else if (o instanceof Map<?, ?> m) {
      if (m.isEmpty()) {
        sb.append("{}");
        return;
      }
      sb.append('{');
      boolean first = true;
      for (Map.Entry<?, ?> e : m.entrySet()) {
        if (!first) {
          sb.append(indent == null ? ", " : ",");
        }
        first = false;
        newline(sb, indent, depth + 1);
        toJson(Str.of(String.valueOf(e.getKey())), sb, sources, indent, depth + 1);
        sb.append(": ");
        toJson(e.getValue(), sb, sources, indent, depth + 1);
      }
      newline(sb, indent, depth);
      sb.append('}');
    } else {
      throw new ChatTemplateException("object of type " + typeName(o) + " is not JSON serializable");
    }
  }

  private static void newline(StringBuilder sb, Integer indent, int depth) {
    if (indent != null) {
      sb.append('\n').append(" ".repeat(indent * depth));
    }
  }

  static Object getAttr(Object o, String name) {
    if (o instanceof Undefined || o == null) {
      throw new ChatTemplateException("'" + typeName(o) + "' has no attribute '" + name + "'");
    }
    if (o instanceof Map<?, ?> m) {
      if (m.containsKey(name)) {
        return m.get(name);
      }
      Fn f = method(o, name);
      return f != null ? f : Undefined.INSTANCE;
    }
    Fn f = method(o, name);
    return f != null ? f : Undefined.INSTANCE;
  }

  static Object getItem(Object o, Object key) {
    if (o instanceof Undefined || o == null) {
      throw new ChatTemplateException("'" + typeName(o) + "' object is not subscriptable");
    }
    if (o instanceof Map<?, ?> m) {
      String k = key instanceof Str s ? s.s : str(key).s;
      return m.containsKey(k) ? m.get(k) : Undefined.INSTANCE;
    }
    if (o instanceof List<?> l && isNumber(key)) {
      int i = (int) toLong(key);
      if (i < 0) {
        i += l.size();
      }
      return i >= 0 && i < l.size() ? l.get(i) : Undefined.INSTANCE;
    }
    if (o instanceof Str s && isNumber(key)) {
      int i = (int) toLong(key);
      if (i < 0) {
        i += s.length();
      }
      return i >= 0 && i < s.length() ? s.sub(i, i + 1) : Undefined.INSTANCE;
    }
    if (key instanceof Str s) {
      return getAttr(o, s.s);
    }
    throw new ChatTemplateException("cannot index " + typeName(o) + " with " + typeName(key));
  }

  static Object slice(Object o, Object start, Object stop, Object step) {
    int len;
    if (o instanceof List<?> l) {
      len = l.size();
    } else if (o instanceof Str s) {
      len = s.length();
    } else {
      throw new ChatTemplateException("cannot slice " + typeName(o));
    }
    int st = step == null ? 1 : (int) toLong(step);
    if (st == 0) {
      throw new ChatTemplateException("slice step cannot be zero");
    }
    int a;
    int b;
    if (st > 0) {
      a = start == null ? 0 : clampIndex((int) toLong(start), len, 0, len);
      b = stop == null ? len : clampIndex((int) toLong(stop), len, 0, len);
    } else {
      a = start == null ? len - 1 : clampIndex((int) toLong(start), len, -1, len - 1);
      b = stop == null ? -1 : clampIndex((int) toLong(stop), len, -1, len - 1);
    }
    List<Integer> idx = new ArrayList<>();
    for (int i = a; st > 0 ? i < b : i > b; i += st) {
      idx.add(i);
    }
    if (o instanceof List<?> l) {
      List<Object> out = new ArrayList<>();
      for (int i : idx) {
        out.add(l.get(i));
      }
      return out;
    }
    Str s = (Str) o;
    if (st == 1) {
      return idx.isEmpty() ? Str.EMPTY : s.sub(a, b);
    }
    Str out = Str.EMPTY;
    for (int i : idx) {
      out = out.concat(s.sub(i, i + 1));
    }
    return out;
  }

  private static int clampIndex(int i, int len, int lo, int hi) {
    if (i < 0) {
      i += len;
    }
    return Math.max(lo, Math.min(hi, i));
  }

  private static List<Object> range(List<Object> a) {
    long start = 0;
    long stop;
    long step = 1;
    if (a.size() == 1) {
      stop = toLong(a.get(0));
    } else {
      start = toLong(a.get(0));
      stop = toLong(a.get(1));
      if (a.size() > 2) {
        step = toLong(a.get(2));
      }
    }
    if (step == 0) {
      throw new ChatTemplateException("range() step must not be zero");
    }
    double count = Math.ceil(((double) stop - start) / step);
    if (count > MAX_SIZE) {
      throw new ChatTemplateException("range(" + start + ", " + stop + ", " + step + ") has "
          + (long) count + " elements; the limit is " + MAX_SIZE);
    }
    List<Object> out = new ArrayList<>();
    for (long i = start; step > 0 ? i < stop : i > stop; i += step) {
      out.add(i);
    }
    return out;
  }

  private static String strftime(LocalDateTime t, String fmt) {
    StringBuilder sb = new StringBuilder();
    for (int i = 0; i < fmt.length(); i++) {
      char c = fmt.charAt(i);
      if (c != '%' || i + 1 >= fmt.length()) {
        sb.append(c);
        continue;
      }
      char d = fmt.charAt(++i);
      String pattern = switch (d) {
        case 'Y' -> "yyyy";
        case 'm' -> "MM";
        case 'd' -> "dd";
        case 'H' -> "HH";
        case 'M' -> "mm";
        case 'S' -> "ss";
        case 'b' -> "MMM";
        case 'B' -> "MMMM";
        case 'a' -> "EEE";
        case 'A' -> "EEEE";
        case 'y' -> "yy";
        default -> null;
      };
      if (pattern == null) {
        sb.append('%').append(d);
      } else {
        sb.append(t.format(DateTimeFormatter.ofPattern(pattern, Locale.ENGLISH)));
      }
    }
    return sb.toString();
  }

  // =============================================================================================
  // methods, filters, tests
  // =============================================================================================

  /** The Python methods templates call on strings and dicts; null when there is none. */
  static Fn method(Object o, String name) {
    if (o instanceof Str s) {
      return switch (name) {
        case "strip" -> (a, k) -> s.strip(true, true, a.isEmpty() || a.get(0) == null ? null : str(a.get(0)).s);
        case "lstrip" -> (a, k) -> s.strip(true, false, a.isEmpty() || a.get(0) == null ? null : str(a.get(0)).s);
        case "rstrip" -> (a, k) -> s.strip(false, true, a.isEmpty() || a.get(0) == null ? null : str(a.get(0)).s);
        case "upper" -> (a, k) -> s.mapText(s.s.toUpperCase(Locale.ROOT));
        case "lower" -> (a, k) -> s.mapText(s.s.toLowerCase(Locale.ROOT));
        case "title" -> (a, k) -> s.mapText(title(s.s));
        case "capitalize" -> (a, k) -> s.mapText(capitalize(s.s));
        case "startswith" -> (a, k) -> startsOrEnds(s, a.get(0), true);
        case "endswith" -> (a, k) -> startsOrEnds(s, a.get(0), false);
        case "replace" -> (a, k) -> s.replace(str(a.get(0)).s, str(a.get(1)), a.size() > 2 ? (int) toLong(a.get(2)) : -1);
        case "split" -> (a, k) -> split(s, a.isEmpty() || a.get(0) == null ? null : str(a.get(0)).s,
            a.size() > 1 ? (int) toLong(a.get(1)) : -1);
        case "find" -> (a, k) -> (long) s.s.indexOf(str(a.get(0)).s);
        case "count" -> (a, k) -> (long) countOccurrences(s.s, str(a.get(0)).s);
        case "join" -> (a, k) -> join(iterate(a.get(0)), s);
        case "format" -> (a, k) -> format(s, a);
        default -> null;
      };
    }
    if (o instanceof Map<?, ?> m) {
      return switch (name) {
        case "items" -> (a, k) -> {
          List<Object> out = new ArrayList<>();
          m.forEach((kk, vv) -> {
            List<Object> pair = new ArrayList<>();
            pair.add(Str.of(String.valueOf(kk)));
            pair.add(vv);
            out.add(pair);
          });
          return out;
        };
        case "keys" -> (a, k) -> iterate(m);
        case "values" -> (a, k) -> new ArrayList<Object>(m.values());
        case "get" -> (a, k) -> {
          String key = str(a.get(0)).s;
          return m.containsKey(key) ? m.get(key) : (a.size() > 1 ? a.get(1) : null);
        };
        default -> null;
      };
    }
    return null;
  }

  private static boolean startsOrEnds(Str s, Object arg, boolean start) {
    List<Object> options = arg instanceof List<?> l ? new ArrayList<>(l) : List.of(arg);
    for (Object opt : options) {
      String x = str(opt).s;
      if (start ? s.s.startsWith(x) : s.s.endsWith(x)) {
        return true;
      }
    }
    return false;
  }

  private static List<Object> split(Str s, String sep, int max) {
    List<Object> out = new ArrayList<>();
    if (sep == null) {
      int i = 0;
      int n = s.length();
      int splits = 0;
      while (i < n) {
        while (i < n && Character.isWhitespace(s.s.charAt(i))) {
          i++;
        }
        if (i >= n) {
          break;
        }
        if (max >= 0 && splits == max) {
          out.add(s.sub(i, n).strip(false, true, null));
          return out;
        }
        int j = i;
        while (j < n && !Character.isWhitespace(s.s.charAt(j))) {
          j++;
        }
        out.add(s.sub(i, j));
        splits++;
        i = j;
      }
      return out;
    }
    if (sep.isEmpty()) {
      throw new ChatTemplateException("empty separator");
    }
    int i = 0;
    int splits = 0;
    while (max < 0 || splits < max) {
      int j = s.s.indexOf(sep, i);
      if (j < 0) {
        break;
      }
      out.add(s.sub(i, j));
      i = j + sep.length();
      splits++;
    }
    out.add(s.sub(i, s.length()));
    return out;
  }

  private static int countOccurrences(String s, String x) {
    if (x.isEmpty()) {
      return s.length() + 1;
    }
    int c = 0;
    for (int i = s.indexOf(x); i >= 0; i = s.indexOf(x, i + x.length())) {
      c++;
    }
    return c;
  }

  private static Str join(List<Object> items, Str sep) {
    Str out = Str.EMPTY;
    for (int i = 0; i < items.size(); i++) {
      if (i > 0) {
        out = out.concat(sep);
      }
      out = out.concat(str(items.get(i)));
    }
    return out;
  }

  private static Str format(Str fmt, List<Object> args) {
    Str out = Str.EMPTY;
    int argi = 0;
    int i = 0;
    String f = fmt.s;
    while (i < f.length()) {
      int o = f.indexOf('{', i);
      if (o < 0 || o + 1 >= f.length()) {
        break;
      }
      int c = f.indexOf('}', o);
      if (c < 0) {
        break;
      }
      out = out.concat(fmt.sub(i, o));
      String idx = f.substring(o + 1, c);
      int at;
      try {
        at = idx.isEmpty() ? argi++ : Integer.parseInt(idx);
      } catch (NumberFormatException e) {
        throw new ChatTemplateException("format(): bad field '{" + idx + "}'");
      }
      if (at < 0 || at >= args.size()) {
        throw new ChatTemplateException("format(): field {" + idx + "} has no argument ("
            + args.size() + " given)");
      }
      Object v = args.get(at);
      out = out.concat(str(v));
      i = c + 1;
    }
    return out.concat(fmt.sub(i, f.length()));
  }

  private static String title(String s) {
    StringBuilder sb = new StringBuilder();
    boolean prevLetter = false;
    for (char c : s.toCharArray()) {
      sb.append(prevLetter ? Character.toLowerCase(c) : Character.toUpperCase(c));
      prevLetter = Character.isLetter(c);
    }
    return sb.toString();
  }

  private static String capitalize(String s) {
    return s.isEmpty() ? s : Character.toUpperCase(s.charAt(0)) + s.substring(1).toLowerCase(Locale.ROOT);
  }

  private Object filter(String name, Object v, List<Object> a, Map<String, Object> k) {
    switch (name) {
      case "trim":
        return str(v).strip(true, true, a.isEmpty() ? null : str(a.get(0)).s);
      case "length":
      case "count":
        if (v instanceof Str s) {
          return (long) s.s.codePointCount(0, s.length());
        }
        if (v instanceof Collection<?> c) {
          return (long) c.size();
        }
        if (v instanceof Map<?, ?> m) {
          return (long) m.size();
        }
        if (v instanceof Undefined) {
          return 0L;
        }
        throw new ChatTemplateException("object of type '" + typeName(v) + "' has no len()");
      case "upper":
        return str(v).mapText(str(v).s.toUpperCase(Locale.ROOT));
      case "lower":
        return str(v).mapText(str(v).s.toLowerCase(Locale.ROOT));
      case "title":
        return str(v).mapText(title(str(v).s));
      case "capitalize":
        return str(v).mapText(capitalize(str(v).s));
      case "string":
      case "safe":
      case "e":
      case "escape":
        return name.startsWith("e") && v instanceof Str s ? Str.taint(escapeHtml(s.s), s) : str(v);
      case "int":
        if (v instanceof Str s) {
          try {
            return Long.parseLong(s.s.trim());
          } catch (NumberFormatException e) {
            return a.isEmpty() ? 0L : a.get(0);
          }
        }
        return isNumber(v) ? toLong(v) : 0L;
      case "float":
        if (v instanceof Str s) {
          try {
            return Double.parseDouble(s.s.trim());
          } catch (NumberFormatException e) {
            return 0.0;
          }
        }
        return isNumber(v) ? toDouble(v) : 0.0;
      case "abs":
        return v instanceof Double d ? (Object) Math.abs(d) : (Object) Math.abs(toLong(v));
      case "list":
        return iterate(v);
      case "first": {
        List<Object> l = iterate(v);
        return l.isEmpty() ? Undefined.INSTANCE : l.get(0);
      }
      case "last": {
        List<Object> l = iterate(v);
        return l.isEmpty() ? Undefined.INSTANCE : l.get(l.size() - 1);
      }
      case "reverse": {
        if (v instanceof Str s) {
          return slice(s, null, null, -1L);
        }
        List<Object> l = iterate(v);
        java.util.Collections.reverse(l);
        return l;
      }
      case "join": {
        List<Object> items = iterate(v);
        if (k.containsKey("attribute")) {
          List<Object> mapped = new ArrayList<>();
          for (Object o : items) {
            mapped.add(getAttr(o, str(k.get("attribute")).s));
          }
          items = mapped;
        }
        return join(items, a.isEmpty() ? Str.EMPTY : str(a.get(0)));
      }
      case "default":
      case "d": {
        boolean boolMode = a.size() > 1 && truthy(a.get(1)) || truthy(k.get("boolean"));
        Object dflt = a.isEmpty() ? (k.containsKey("default_value") ? k.get("default_value") : Str.EMPTY) : a.get(0);
        if (v instanceof Undefined || boolMode && !truthy(v)) {
          return dflt;
        }
        return v;
      }
      case "replace":
        return str(v).replace(str(a.get(0)).s, str(a.get(1)), a.size() > 2 ? (int) toLong(a.get(2)) : -1);
      case "tojson": {
        StringBuilder sb = new StringBuilder();
        List<Str> sources = new ArrayList<>();
        Object ind = k.containsKey("indent") ? k.get("indent") : (a.isEmpty() ? null : a.get(0));
        toJson(v, sb, sources, ind == null ? null : (int) toLong(ind), 0);
        return Str.taint(sb.toString(), sources.toArray(new Str[0]));
      }
      case "items":
        return ((Fn) method(v instanceof Map ? v : Map.of(), "items")).call(List.of(), Map.of());
      case "indent": {
        int width = a.isEmpty() ? 4 : (int) toLong(a.get(0));
        boolean first = a.size() > 1 && truthy(a.get(1)) || truthy(k.get("first"));
        Str s = str(v);
        String pad = " ".repeat(Math.max(0, width));
        String[] lines = s.s.split("\n", -1);
        StringBuilder sb = new StringBuilder();
        for (int i = 0; i < lines.length; i++) {
          if (i > 0) {
            sb.append('\n');
          }
          if ((i > 0 || first) && !lines[i].isEmpty()) {
            sb.append(pad);
          }
          sb.append(lines[i]);
        }
        return Str.taint(sb.toString(), s);
      }
      case "map": {
        List<Object> out = new ArrayList<>();
        for (Object o : iterate(v)) {
          if (k.containsKey("attribute")) {
            Object x = getItem(o, k.get("attribute"));
            out.add(x instanceof Undefined && k.containsKey("default") ? k.get("default") : x);
          } else {
            out.add(filter(str(a.get(0)).s, o, a.subList(1, a.size()), Map.of()));
          }
        }
        return out;
      }
      case "select":
      case "reject":
      case "selectattr":
      case "rejectattr": {
        boolean attr = name.endsWith("attr");
        boolean keep = name.startsWith("select");
        List<Object> out = new ArrayList<>();
        for (Object o : iterate(v)) {
          Object x = attr ? getItem(o, a.get(0)) : o;
          int ti = attr ? 1 : 0;
          boolean ok = a.size() > ti ? test(str(a.get(ti)).s, x, a.subList(ti + 1, a.size())) : truthy(x);
          if (ok == keep) {
            out.add(o);
          }
        }
        return out;
      }
      case "unique": {
        List<Object> out = new ArrayList<>();
        for (Object o : iterate(v)) {
          if (!contains(out, o)) {
            out.add(o);
          }
        }
        return out;
      }
      case "sort": {
        List<Object> l = iterate(v);
        boolean rev = truthy(k.get("reverse"));
        Object attrName = k.get("attribute");
        l.sort((x, y) -> compare(attrName == null ? x : getItem(x, attrName), attrName == null ? y : getItem(y, attrName)));
        if (rev) {
          java.util.Collections.reverse(l);
        }
        return l;
      }
      case "round": {
        int prec = a.isEmpty() ? 0 : (int) toLong(a.get(0));
        double f = Math.pow(10, prec);
        return Math.round(toDouble(v) * f) / f;
      }
      default:
        throw new ChatTemplateException("unsupported template filter '" + name + "'");
    }
  }

  private static String escapeHtml(String s) {
    return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("\"", "&#34;").replace("'", "&#39;");
  }

  private static boolean test(String name, Object v, List<Object> a) {
    return switch (name) {
      case "defined" -> !(v instanceof Undefined);
      case "undefined" -> v instanceof Undefined;
      case "none" -> v == null;
      case "string" -> v instanceof Str;
      case "number" -> v instanceof Long || v instanceof Double;
      case "integer" -> v instanceof Long;
      case "float" -> v instanceof Double;
      case "boolean" -> v instanceof Boolean;
      case "true" -> Boolean.TRUE.equals(v);
      case "false" -> Boolean.FALSE.equals(v);
      case "mapping" -> v instanceof Map;
      case "sequence" -> v instanceof List || v instanceof Str || v instanceof Map;
      case "iterable" -> v instanceof List || v instanceof Str || v instanceof Map;
      case "callable" -> v instanceof Fn;
      case "odd" -> toLong(v) % 2 != 0;
      case "even" -> toLong(v) % 2 == 0;
      case "divisibleby" -> toLong(v) % toLong(a.get(0)) == 0;
      case "eq", "equalto", "==" -> pyEquals(v, a.get(0));
      case "ne", "!=" -> !pyEquals(v, a.get(0));
      case "lt", "lessthan", "<" -> compare(v, a.get(0)) < 0;
      case "gt", "greaterthan", ">" -> compare(v, a.get(0)) > 0;
      case "le", "<=" -> compare(v, a.get(0)) <= 0;
      case "ge", ">=" -> compare(v, a.get(0)) >= 0;
      case "in" -> contains(a.get(0), v);
      case "sameas" -> v == a.get(0) || v != null && v.equals(a.get(0)) && (v instanceof Boolean);
      case "lower" -> v instanceof Str s && s.s.equals(s.s.toLowerCase(Locale.ROOT));
      case "upper" -> v instanceof Str s && s.s.equals(s.s.toUpperCase(Locale.ROOT));
      default -> throw new ChatTemplateException("unsupported template test '" + name + "'");
    };
  }
}
