package dev.lora4j.tokenizer;

import static dev.lora4j.tokenizer.Jinja.MAX_CALL_DEPTH;
import static dev.lora4j.tokenizer.Jinja.MAX_SIZE;
import static dev.lora4j.tokenizer.JinjaBuiltins.filter;
import static dev.lora4j.tokenizer.JinjaBuiltins.test;
import static dev.lora4j.tokenizer.JinjaRuntime.compare;
import static dev.lora4j.tokenizer.JinjaRuntime.contains;
import static dev.lora4j.tokenizer.JinjaRuntime.getAttr;
import static dev.lora4j.tokenizer.JinjaRuntime.getItem;
import static dev.lora4j.tokenizer.JinjaRuntime.isNumber;
import static dev.lora4j.tokenizer.JinjaRuntime.iterate;
import static dev.lora4j.tokenizer.JinjaRuntime.pyEquals;
import static dev.lora4j.tokenizer.JinjaRuntime.slice;
import static dev.lora4j.tokenizer.JinjaRuntime.str;
import static dev.lora4j.tokenizer.JinjaRuntime.toDouble;
import static dev.lora4j.tokenizer.JinjaRuntime.toLong;
import static dev.lora4j.tokenizer.JinjaRuntime.truthy;
import static dev.lora4j.tokenizer.JinjaRuntime.typeName;

import dev.lora4j.tokenizer.JinjaAst.Attr;
import dev.lora4j.tokenizer.JinjaAst.Bin;
import dev.lora4j.tokenizer.JinjaAst.BreakNode;
import dev.lora4j.tokenizer.JinjaAst.Call;
import dev.lora4j.tokenizer.JinjaAst.Cond;
import dev.lora4j.tokenizer.JinjaAst.ContinueNode;
import dev.lora4j.tokenizer.JinjaAst.DictLit;
import dev.lora4j.tokenizer.JinjaAst.Expr;
import dev.lora4j.tokenizer.JinjaAst.Filter;
import dev.lora4j.tokenizer.JinjaAst.ForNode;
import dev.lora4j.tokenizer.JinjaAst.IfNode;
import dev.lora4j.tokenizer.JinjaAst.Item;
import dev.lora4j.tokenizer.JinjaAst.ListLit;
import dev.lora4j.tokenizer.JinjaAst.Lit;
import dev.lora4j.tokenizer.JinjaAst.MacroNode;
import dev.lora4j.tokenizer.JinjaAst.Name;
import dev.lora4j.tokenizer.JinjaAst.Node;
import dev.lora4j.tokenizer.JinjaAst.OutNode;
import dev.lora4j.tokenizer.JinjaAst.SetNode;
import dev.lora4j.tokenizer.JinjaAst.Slice;
import dev.lora4j.tokenizer.JinjaAst.Test;
import dev.lora4j.tokenizer.JinjaAst.TextNode;
import dev.lora4j.tokenizer.JinjaAst.Unary;
import dev.lora4j.tokenizer.JinjaRuntime.Fn;
import dev.lora4j.tokenizer.JinjaRuntime.Namespace;
import dev.lora4j.tokenizer.JinjaRuntime.Undefined;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Runs a compiled template: statements write to an {@link Str.Builder} that records, per char,
 * whether it came from the template or from a message; expressions evaluate to runtime values with
 * Python's semantics ({@link JinjaRuntime}) and call the built-ins ({@link JinjaBuiltins}).
 */
final class JinjaInterpreter {
  private JinjaInterpreter() {}

  /** Nested macro calls of the render running on this thread. */
  private static final ThreadLocal<int[]> CALL_DEPTH = ThreadLocal.withInitial(() -> new int[1]);

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
        throw new ChatTemplateException(
            callee + " needs argument " + (i + 1) + " but got " + size());
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

  /**
   * Renders with the given variables (values already converted: Str, Long, Double, List, Map...).
   */
  static Str render(List<Node> root, Map<String, Object> vars) {
    Scope globals = new Scope(null);
    globals.vars.putAll(JinjaBuiltins.globals());
    Scope scope = new Scope(globals);
    scope.vars.putAll(vars);
    Str.Builder out = new Str.Builder();
    try {
      exec(root, scope, out);
    } catch (BreakSignal | ContinueSignal outside) {
      throw new ChatTemplateException("{% break %} or {% continue %} outside a for loop");
    }
    return out.build();
  }

  private static void exec(List<Node> nodes, Scope scope, Str.Builder out) {
    for (Node n : nodes) {
      exec(n, scope, out);
    }
  }

  private static void exec(Node node, Scope scope, Str.Builder out) {
    if (node instanceof TextNode t) {
      out.append(t.text());
    } else if (node instanceof OutNode o) {
      out.append(str(eval(o.e(), scope)));
    } else if (node instanceof IfNode f) {
      for (int i = 0; i < f.conds().size(); i++) {
        if (truthy(eval(f.conds().get(i), scope))) {
          exec(f.bodies().get(i), scope, out);
          return;
        }
      }
      exec(f.orElse(), scope, out);
    } else if (node instanceof ForNode f) {
      execFor(f, scope, out);
    } else if (node instanceof SetNode s) {
      Object value;
      if (s.body() != null) {
        Str.Builder inner = new Str.Builder();
        exec(s.body(), scope, inner);
        value = inner.build();
      } else {
        value = eval(s.value(), scope);
      }
      if (s.attr() != null) {
        Object ns = scope.get(s.targets().get(0));
        if (!(ns instanceof Namespace nsm)) {
          throw new ChatTemplateException(
              "cannot assign attribute '"
                  + s.attr()
                  + "' of '"
                  + s.targets().get(0)
                  + "': not a namespace");
        }
        nsm.put(s.attr(), value);
      } else if (s.targets().size() == 1) {
        scope.vars.put(s.targets().get(0), value);
      } else {
        List<Object> vals = iterate(value);
        if (vals.size() != s.targets().size()) {
          throw new ChatTemplateException(
              "cannot unpack " + vals.size() + " values into " + s.targets().size());
        }
        for (int i = 0; i < vals.size(); i++) {
          scope.vars.put(s.targets().get(i), vals.get(i));
        }
      }
    } else if (node instanceof MacroNode m) {
      Scope defScope = scope;
      scope.vars.put(
          m.name(),
          (Fn)
              (args, kwargs) -> {
                Scope ms = new Scope(defScope);
                for (int i = 0; i < m.params().size(); i++) {
                  String pn = m.params().get(i);
                  Object v;
                  if (i < args.size()) {
                    v = args.get(i);
                  } else if (kwargs.containsKey(pn)) {
                    v = kwargs.get(pn);
                  } else if (m.defaults().get(i) != null) {
                    v = eval(m.defaults().get(i), ms);
                  } else {
                    v = Undefined.INSTANCE;
                  }
                  ms.vars.put(pn, v);
                }
                Str.Builder inner = new Str.Builder();
                int[] calls = CALL_DEPTH.get();
                if (++calls[0] > MAX_CALL_DEPTH) {
                  calls[0] = 0;
                  throw new ChatTemplateException(
                      "macro '"
                          + m.name()
                          + "' called more than "
                          + MAX_CALL_DEPTH
                          + " levels deep (runaway recursion?)");
                }
                try {
                  exec(m.body(), ms, inner);
                } finally {
                  calls[0] = Math.max(0, calls[0] - 1);
                }
                return inner.build();
              });
    } else if (node instanceof BreakNode) {
      throw new BreakSignal();
    } else if (node instanceof ContinueNode) {
      throw new ContinueSignal();
    }
  }

  private static void execFor(ForNode f, Scope scope, Str.Builder out) {
    List<Object> items = iterate(eval(f.iter(), scope));
    if (f.filter() != null) {
      List<Object> kept = new ArrayList<>();
      for (Object it : items) {
        Scope fs = new Scope(scope);
        bindTargets(f, fs, it);
        if (truthy(eval(f.filter(), fs))) {
          kept.add(it);
        }
      }
      items = kept;
    }
    if (items.isEmpty()) {
      exec(f.orElse(), scope, out);
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
        exec(f.body(), ls, out);
      } catch (BreakSignal b) {
        break;
      } catch (ContinueSignal c) {
        // next item
      }
    }
  }

  private static void bindTargets(ForNode f, Scope s, Object item) {
    if (f.targets().size() == 1) {
      s.vars.put(f.targets().get(0), item);
      return;
    }
    List<Object> vals = iterate(item);
    if (vals.size() != f.targets().size()) {
      throw new ChatTemplateException(
          "cannot unpack "
              + vals.size()
              + " values into "
              + f.targets().size()
              + " loop variables (line "
              + f.line()
              + ")");
    }
    for (int i = 0; i < vals.size(); i++) {
      s.vars.put(f.targets().get(i), vals.get(i));
    }
  }

  private static Object eval(Expr e, Scope scope) {
    if (e instanceof Lit l) {
      return l.value();
    }
    if (e instanceof Name n) {
      return scope.get(n.name());
    }
    if (e instanceof Attr a) {
      return getAttr(eval(a.obj(), scope), a.name());
    }
    if (e instanceof Item it) {
      return getItem(eval(it.obj(), scope), eval(it.key(), scope));
    }
    if (e instanceof Slice s) {
      return slice(
          eval(s.obj(), scope),
          s.start() == null ? null : eval(s.start(), scope),
          s.stop() == null ? null : eval(s.stop(), scope),
          s.step() == null ? null : eval(s.step(), scope));
    }
    if (e instanceof Call c) {
      Object fn = eval(c.fn(), scope);
      List<Object> args = new Args(describe(c.fn()) + "()");
      for (Expr x : c.args()) {
        args.add(eval(x, scope));
      }
      Map<String, Object> kwargs = new LinkedHashMap<>();
      c.kwargs().forEach((k, v) -> kwargs.put(k, eval(v, scope)));
      if (!(fn instanceof Fn f)) {
        throw new ChatTemplateException("'" + describe(c.fn()) + "' is not callable");
      }
      return f.call(args, kwargs);
    }
    if (e instanceof Filter f) {
      Object v = eval(f.obj(), scope);
      List<Object> args = new Args("filter '" + f.name() + "'");
      for (Expr x : f.args()) {
        args.add(eval(x, scope));
      }
      Map<String, Object> kwargs = new LinkedHashMap<>();
      f.kwargs().forEach((k, x) -> kwargs.put(k, eval(x, scope)));
      return filter(f.name(), v, args, kwargs);
    }
    if (e instanceof Test t) {
      Object v =
          t.name().equals("defined") || t.name().equals("undefined")
              ? evalQuiet(t.obj(), scope)
              : eval(t.obj(), scope);
      List<Object> args = new Args("test '" + t.name() + "'");
      for (Expr x : t.args()) {
        args.add(eval(x, scope));
      }
      return test(t.name(), v, args) != t.negated();
    }
    if (e instanceof Unary u) {
      Object v = eval(u.e(), scope);
      if (u.op().equals("not")) {
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
      return truthy(eval(c.cond(), scope)) ? eval(c.then(), scope) : eval(c.otherwise(), scope);
    }
    if (e instanceof ListLit l) {
      List<Object> out = new ArrayList<>();
      for (Expr x : l.items()) {
        out.add(eval(x, scope));
      }
      return out;
    }
    if (e instanceof DictLit d) {
      Map<String, Object> out = new LinkedHashMap<>();
      for (int i = 0; i < d.keys().size(); i++) {
        out.put(str(eval(d.keys().get(i), scope)).s, eval(d.values().get(i), scope));
      }
      return out;
    }
    if (e instanceof Bin b) {
      if (b.op().equals("and")) {
        Object l = eval(b.l(), scope);
        return truthy(l) ? eval(b.r(), scope) : l;
      }
      if (b.op().equals("or")) {
        Object l = eval(b.l(), scope);
        return truthy(l) ? l : eval(b.r(), scope);
      }
      return binary(b.op(), eval(b.l(), scope), eval(b.r(), scope));
    }
    throw new IllegalStateException("unknown expression " + e);
  }

  /**
   * evaluates for "is defined": a missing attribute of an undefined value is undefined, not an
   * error
   */
  private static Object evalQuiet(Expr e, Scope scope) {
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
      return n.name();
    }
    if (e instanceof Attr a) {
      return describe(a.obj()) + "." + a.name();
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
            throw new ChatTemplateException(
                "string repetition would make "
                    + k
                    + " copies of "
                    + a.length()
                    + " chars; the limit is "
                    + MAX_SIZE
                    + " chars");
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
          return ints
              ? (Object) Math.floorMod(toLong(l), toLong(r))
              : (Object) (a - Math.floor(a / b) * b);
        case "**":
          return ints && toLong(r) >= 0 ? (Object) (long) Math.pow(a, b) : (Object) Math.pow(a, b);
        default:
          break;
      }
    }
    throw new ChatTemplateException(
        "unsupported operand types for " + op + ": " + typeName(l) + " and " + typeName(r));
  }
}
