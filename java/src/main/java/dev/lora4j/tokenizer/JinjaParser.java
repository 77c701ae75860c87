package dev.lora4j.tokenizer;

import static dev.lora4j.tokenizer.Jinja.MAX_NESTING;

import dev.lora4j.tokenizer.JinjaAst.BreakNode;
import dev.lora4j.tokenizer.JinjaAst.ContinueNode;
import dev.lora4j.tokenizer.JinjaAst.Expr;
import dev.lora4j.tokenizer.JinjaAst.ForNode;
import dev.lora4j.tokenizer.JinjaAst.IfNode;
import dev.lora4j.tokenizer.JinjaAst.Lit;
import dev.lora4j.tokenizer.JinjaAst.MacroNode;
import dev.lora4j.tokenizer.JinjaAst.Node;
import dev.lora4j.tokenizer.JinjaAst.OutNode;
import dev.lora4j.tokenizer.JinjaAst.SetNode;
import dev.lora4j.tokenizer.JinjaAst.TextNode;
import dev.lora4j.tokenizer.JinjaLexer.Part;
import java.util.ArrayList;
import java.util.List;

/** Parses the parts of a template into statement nodes, block by block. */
final class JinjaParser {
  final List<Part> parts;
  int p;

  private int depth;

  JinjaParser(List<Part> parts) {
    this.parts = parts;
  }

  /** parses nodes until a statement whose first word is in {@code stops}; leaves p on it */
  List<Node> nodes(String... stops) {
    if (++depth > MAX_NESTING) {
      throw new ChatTemplateException(
          "template syntax error: blocks nested more than " + MAX_NESTING + " levels deep");
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
      switch (part.kind()) {
        case TEXT -> {
          out.add(new TextNode(Str.of(part.text())));
          p++;
        }
        case OUTPUT -> {
          JinjaExprParser ep = new JinjaExprParser(part.text(), part.line());
          Expr e = ep.expression();
          ep.expectEnd();
          out.add(new OutNode(e, part.line()));
          p++;
        }
        case STATEMENT -> {
          String word = firstWord(part.text());
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
      throw new ChatTemplateException(
          "template syntax error: missing {% " + stops[stops.length - 1] + " %}");
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
    String rest = part.text().substring(word.length());
    int line = part.line();
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
          String w = firstWord(stop.text());
          if (w.equals("elif")) {
            conds.add(parseExpr(stop.text().substring(4), stop.line()));
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
        JinjaExprParser ep = new JinjaExprParser(rest, line);
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
        if (firstWord(parts.get(p++).text()).equals("else")) {
          orElse = nodes("endfor");
          p++;
        }
        return new ForNode(targets, iter, filter, body, orElse, line);
      }
      case "set" -> {
        JinjaExprParser ep = new JinjaExprParser(rest, line);
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
        JinjaExprParser ep = new JinjaExprParser(rest, line);
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
      default ->
          throw new ChatTemplateException(
              "unsupported template statement '{% " + part.text() + " %}' at line " + line);
    }
  }

  static Expr parseExpr(String src, int line) {
    JinjaExprParser ep = new JinjaExprParser(src, line);
    Expr e = ep.expression();
    ep.expectEnd();
    return e;
  }
}
