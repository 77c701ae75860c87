package dev.lora4j.tokenizer;

import static dev.lora4j.tokenizer.JinjaBuiltins.method;

import java.util.ArrayList;
import java.util.Collection;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;

/**
 * The values templates compute with and their Python semantics: {@link Undefined}, callables,
 * namespaces; truthiness, equality, ordering, membership, iteration, {@code str()}, attribute and
 * item access and slicing, over {@link Str}, Long, Double, Boolean, List and Map.
 */
final class JinjaRuntime {
  private JinjaRuntime() {}

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
    throw new ChatTemplateException(
        "argument of type '" + typeName(container) + "' is not iterable");
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

  static String pyFloat(double d) {
    if (d == Math.rint(d) && !Double.isInfinite(d) && Math.abs(d) < 1e16) {
      return String.valueOf((long) d) + ".0";
    }
    return String.valueOf(d);
  }

  private static void repr(Object o, StringBuilder sb, List<Str> sources) {
    if (o instanceof Str s) {
      sources.add(s);
      sb.append('\'')
          .append(s.s.replace("\\", "\\\\").replace("'", "\\'").replace("\n", "\\n"))
          .append('\'');
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
      // by code point, as Python indexes a str (a character outside the BMP is one)
      int n = s.s.codePointCount(0, s.length());
      int i = (int) toLong(key);
      if (i < 0) {
        i += n;
      }
      return i >= 0 && i < n ? s.sub(cpOffset(s, i), cpOffset(s, i + 1)) : Undefined.INSTANCE;
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
      len = s.s.codePointCount(0, s.length()); // by code point, as Python slices a str
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
      return idx.isEmpty() ? Str.EMPTY : s.sub(cpOffset(s, a), cpOffset(s, b));
    }
    Str out = Str.EMPTY;
    for (int i : idx) {
      out = out.concat(s.sub(cpOffset(s, i), cpOffset(s, i + 1)));
    }
    return out;
  }

  /** The UTF-16 offset of code point i of s (0 .. its code point count). */
  private static int cpOffset(Str s, int i) {
    return s.s.offsetByCodePoints(0, i);
  }

  private static int clampIndex(int i, int len, int lo, int hi) {
    if (i < 0) {
      i += len;
    }
    return Math.max(lo, Math.min(hi, i));
  }
}
