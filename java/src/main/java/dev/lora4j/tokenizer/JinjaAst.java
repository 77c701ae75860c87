package dev.lora4j.tokenizer;

import java.util.List;
import java.util.Map;

/** The syntax tree of a compiled template: expressions and statement nodes. */
final class JinjaAst {
  private JinjaAst() {}

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

  record ForNode(
      List<String> targets, Expr iter, Expr filter, List<Node> body, List<Node> orElse, int line)
      implements Node {}

  record SetNode(List<String> targets, String attr, Expr value, List<Node> body) implements Node {}

  record MacroNode(String name, List<String> params, List<Expr> defaults, List<Node> body)
      implements Node {}

  record BreakNode() implements Node {}

  record ContinueNode() implements Node {}
}
