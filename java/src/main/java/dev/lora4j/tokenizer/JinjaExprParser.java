package dev.lora4j.tokenizer;

import static dev.lora4j.tokenizer.Jinja.MAX_NESTING;
import static dev.lora4j.tokenizer.JinjaLexer.tokenize;

import dev.lora4j.tokenizer.JinjaAst.Attr;
import dev.lora4j.tokenizer.JinjaAst.Bin;
import dev.lora4j.tokenizer.JinjaAst.Call;
import dev.lora4j.tokenizer.JinjaAst.Cond;
import dev.lora4j.tokenizer.JinjaAst.DictLit;
import dev.lora4j.tokenizer.JinjaAst.Expr;
import dev.lora4j.tokenizer.JinjaAst.Filter;
import dev.lora4j.tokenizer.JinjaAst.Item;
import dev.lora4j.tokenizer.JinjaAst.ListLit;
import dev.lora4j.tokenizer.JinjaAst.Lit;
import dev.lora4j.tokenizer.JinjaAst.Name;
import dev.lora4j.tokenizer.JinjaAst.Slice;
import dev.lora4j.tokenizer.JinjaAst.Test;
import dev.lora4j.tokenizer.JinjaAst.Unary;
import dev.lora4j.tokenizer.JinjaLexer.T;
import dev.lora4j.tokenizer.JinjaLexer.Tok;
import dev.lora4j.tokenizer.JinjaRuntime.Undefined;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/** Parses the expression of one tag, with Python's operator precedence. */
final class JinjaExprParser {
  final List<Tok> toks;
  final int line;
  int p;
  int depth;

  /** counts one level of nesting; the caller decrements {@link #depth} when done */
  void enter() {
    if (++depth > MAX_NESTING) {
      throw new ChatTemplateException(
          "template syntax error at line "
              + line
              + ": expression nested more than "
              + MAX_NESTING
              + " levels deep");
    }
  }

  JinjaExprParser(String src, int line) {
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
    return t.type() == T.OP && t.text().equals(op);
  }

  boolean isName(String name) {
    Tok t = peek();
    return t.type() == T.NAME && t.text().equals(name);
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
    if (t.type() != T.NAME) {
      p--;
      throw error("expected a name");
    }
    return t.text();
  }

  ChatTemplateException error(String msg) {
    Tok t = peek();
    return new ChatTemplateException(
        "template syntax error at line "
            + line
            + ": "
            + msg
            + (t.type() == T.END ? " at end of expression" : " near '" + t.text() + "'"));
  }

  void expectEnd() {
    if (peek().type() != T.END) {
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
      if (peek().type() == T.END) {
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
      if (t.type() == T.OP && List.of("==", "!=", "<", ">", "<=", ">=").contains(t.text())) {
        p++;
        e = new Bin(t.text(), e, math1());
      } else if (isName("in")) {
        p++;
        e = new Bin("in", e, math1());
      } else if (isName("not")
          && toks.get(p + 1).type() == T.NAME
          && toks.get(p + 1).text().equals("in")) {
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
      String sign = toks.get(p - 1).text();
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
          boolean startsArg =
              t.type() == T.STRING
                  || t.type() == T.INT
                  || t.type() == T.FLOAT
                  || t.type() == T.NAME
                      && !List.of("and", "or", "else", "if", "in", "not", "is").contains(t.text())
                  || t.type() == T.OP
                      && (t.text().equals("[") || t.text().equals("{") || t.text().equals("-"));
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
    while (isOp(".") && toks.get(p + 1).type() == T.NAME) {
      p++;
      sb.append('.').append(expectName());
    }
    return sb.toString();
  }

  /** after "(": arguments up to and including ")" */
  void callArgs(List<Expr> args, Map<String, Expr> kwargs) {
    while (!acceptOp(")")) {
      if (peek().type() == T.NAME
          && toks.get(p + 1).type() == T.OP
          && toks.get(p + 1).text().equals("=")) {
        String k = next().text();
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
    switch (t.type()) {
      case NAME -> {
        return switch (t.text()) {
          case "true", "True" -> new Lit(Boolean.TRUE);
          case "false", "False" -> new Lit(Boolean.FALSE);
          case "none", "None" -> new Lit(null);
          default -> new Name(t.text());
        };
      }
      case STRING -> {
        StringBuilder sb = new StringBuilder((String) t.value());
        while (peek().type() == T.STRING) {
          sb.append((String) next().value());
        }
        return new Lit(Str.of(sb.toString()));
      }
      case INT, FLOAT -> {
        return new Lit(t.value());
      }
      case OP -> {
        switch (t.text()) {
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
          default -> {}
        }
      }
      default -> {}
    }
    p--;
    throw error("unexpected token");
  }

  Expr postfix(Expr e) {
    while (true) {
      if (acceptOp(".")) {
        Tok t = next();
        if (t.type() == T.NAME) {
          e = new Attr(e, t.text());
        } else if (t.type() == T.INT) {
          e = new Item(e, new Lit(t.value()));
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
