package dev.lora4j.tokenizer;

import java.util.ArrayList;
import java.util.List;

/**
 * The lexers of the Jinja interpreter. {@link #lex} cuts a template source into text, output
 * ({@code {{ }}}) and statement ({@code {% %}}) parts, applying the whitespace control of
 * transformers' environment ({@code trim_blocks}, {@code lstrip_blocks}, {@code -} and {@code +}),
 * dropping comments and keeping raw blocks as text; {@link #tokenize} cuts the body of a tag into
 * expression tokens.
 */
final class JinjaLexer {
  private JinjaLexer() {}

  enum PartKind {
    TEXT,
    OUTPUT,
    STATEMENT
  }

  record Part(PartKind kind, String text, int line) {}

  static List<Part> lex(String src) {
    List<Part> parts = new ArrayList<>();
    StringBuilder text = new StringBuilder();
    int i = 0;
    int n = src.length();
    boolean stripNextLeading = false; // a "-" closed the previous tag
    boolean trimNextNewline = false; // trim_blocks after a block or comment
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
        while (open - k - 1 >= 0
            && (src.charAt(open - k - 1) == ' ' || src.charAt(open - k - 1) == '\t')) {
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
    for (int i = src.indexOf('{', from);
        i >= 0 && i + 1 < src.length();
        i = src.indexOf('{', i + 1)) {
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

  enum T {
    NAME,
    STRING,
    INT,
    FLOAT,
    OP,
    END
  }

  record Tok(T type, String text, Object value) {}

  private static final String[] OPS = {
    "**", "//", "==", "!=", "<=", ">=", "(", ")", "[", "]", "{", "}", ",", ".", ":", "|", "~", "+",
    "-", "*", "/", "%", "<", ">", "=", "!"
  };

  static List<Tok> tokenize(String s, int line) {
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
          out.add(
              isFloat
                  ? new Tok(T.FLOAT, num, Double.parseDouble(num))
                  : new Tok(T.INT, num, Long.parseLong(num)));
        } catch (NumberFormatException e) {
          throw new ChatTemplateException(
              "bad number literal '"
                  + num
                  + "' at line "
                  + line
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

  private static int hexEscape(String s, int at, int digits, int line) {
    int v = 0;
    for (int k = 0; k < digits; k++) {
      int d = at + k < s.length() ? Character.digit(s.charAt(at + k), 16) : -1;
      if (d < 0) {
        throw new ChatTemplateException(
            "bad escape in a string literal at line "
                + line
                + ": expected "
                + digits
                + " hex digits");
      }
      v = v * 16 + d;
    }
    return v;
  }
}
