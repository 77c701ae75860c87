package dev.lora4j.tokenizer;

import static dev.lora4j.tokenizer.Jinja.MAX_SIZE;
import static dev.lora4j.tokenizer.JinjaRuntime.compare;
import static dev.lora4j.tokenizer.JinjaRuntime.contains;
import static dev.lora4j.tokenizer.JinjaRuntime.getAttr;
import static dev.lora4j.tokenizer.JinjaRuntime.getItem;
import static dev.lora4j.tokenizer.JinjaRuntime.isNumber;
import static dev.lora4j.tokenizer.JinjaRuntime.iterate;
import static dev.lora4j.tokenizer.JinjaRuntime.pyEquals;
import static dev.lora4j.tokenizer.JinjaRuntime.pyFloat;
import static dev.lora4j.tokenizer.JinjaRuntime.slice;
import static dev.lora4j.tokenizer.JinjaRuntime.str;
import static dev.lora4j.tokenizer.JinjaRuntime.toDouble;
import static dev.lora4j.tokenizer.JinjaRuntime.toLong;
import static dev.lora4j.tokenizer.JinjaRuntime.truthy;
import static dev.lora4j.tokenizer.JinjaRuntime.typeName;

import dev.lora4j.tokenizer.JinjaRuntime.Fn;
import dev.lora4j.tokenizer.JinjaRuntime.Namespace;
import dev.lora4j.tokenizer.JinjaRuntime.Undefined;
import java.time.LocalDateTime;
import java.time.format.DateTimeFormatter;
import java.util.ArrayList;
import java.util.Collection;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * What templates can call: the globals, the Python methods of strings and dicts, the filters
 * ({@code x | name}) and the tests ({@code x is name}) chat templates use. An unknown filter or
 * test is a {@link ChatTemplateException} naming it.
 */
final class JinjaBuiltins {
  private JinjaBuiltins() {}

  /**
   * The global functions: {@code range}, {@code namespace}, {@code raise_exception}, {@code
   * strftime_now}, {@code dict}.
   */
  static Map<String, Object> globals() {
    Map<String, Object> globals = new LinkedHashMap<>();
    globals.put("range", (Fn) (a, k) -> range(a));
    globals.put(
        "namespace",
        (Fn)
            (a, k) -> {
              Namespace ns = new Namespace();
              for (Object o : a) {
                if (o instanceof Map<?, ?> m) {
                  m.forEach((kk, vv) -> ns.put(String.valueOf(kk), vv));
                }
              }
              ns.putAll(k);
              return ns;
            });
    globals.put(
        "raise_exception",
        (Fn)
            (a, k) -> {
              throw new ChatTemplateException.Raised(
                  a.isEmpty() ? "raise_exception() called" : str(a.get(0)).s);
            });
    globals.put(
        "strftime_now",
        (Fn)
            (a, k) -> {
              if (a.size() != 1) {
                throw new ChatTemplateException(
                    "strftime_now() takes one format argument, got " + a.size());
              }
              return Str.of(strftime(LocalDateTime.now(), str(a.get(0)).s));
            });
    globals.put("dict", (Fn) (a, k) -> new LinkedHashMap<String, Object>(k));
    return globals;
  }

  static void toJson(Object o, StringBuilder sb, List<Str> sources, Integer indent, int depth) {
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
      throw new ChatTemplateException(
          "object of type " + typeName(o) + " is not JSON serializable");
    }
  }

  private static void newline(StringBuilder sb, Integer indent, int depth) {
    if (indent != null) {
      sb.append('\n').append(" ".repeat(indent * depth));
    }
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
      throw new ChatTemplateException(
          "range("
              + start
              + ", "
              + stop
              + ", "
              + step
              + ") has "
              + (long) count
              + " elements; the limit is "
              + MAX_SIZE);
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
      String pattern =
          switch (d) {
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

  /** The Python methods templates call on strings and dicts; null when there is none. */
  static Fn method(Object o, String name) {
    if (o instanceof Str s) {
      return switch (name) {
        case "strip" ->
            (a, k) -> s.strip(true, true, a.isEmpty() || a.get(0) == null ? null : str(a.get(0)).s);
        case "lstrip" ->
            (a, k) ->
                s.strip(true, false, a.isEmpty() || a.get(0) == null ? null : str(a.get(0)).s);
        case "rstrip" ->
            (a, k) ->
                s.strip(false, true, a.isEmpty() || a.get(0) == null ? null : str(a.get(0)).s);
        case "upper" -> (a, k) -> s.mapText(s.s.toUpperCase(Locale.ROOT));
        case "lower" -> (a, k) -> s.mapText(s.s.toLowerCase(Locale.ROOT));
        case "title" -> (a, k) -> s.mapText(title(s.s));
        case "capitalize" -> (a, k) -> s.mapText(capitalize(s.s));
        case "startswith" -> (a, k) -> startsOrEnds(s, a.get(0), true);
        case "endswith" -> (a, k) -> startsOrEnds(s, a.get(0), false);
        case "replace" ->
            (a, k) ->
                s.replace(
                    str(a.get(0)).s, str(a.get(1)), a.size() > 2 ? (int) toLong(a.get(2)) : -1);
        case "split" ->
            (a, k) ->
                split(
                    s,
                    a.isEmpty() || a.get(0) == null ? null : str(a.get(0)).s,
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
        case "items" ->
            (a, k) -> {
              List<Object> out = new ArrayList<>();
              m.forEach(
                  (kk, vv) -> {
                    List<Object> pair = new ArrayList<>();
                    pair.add(Str.of(String.valueOf(kk)));
                    pair.add(vv);
                    out.add(pair);
                  });
              return out;
            };
        case "keys" -> (a, k) -> iterate(m);
        case "values" -> (a, k) -> new ArrayList<Object>(m.values());
        case "get" ->
            (a, k) -> {
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
        while (i < n && Str.isPySpace(s.s.charAt(i))) {
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
        while (j < n && !Str.isPySpace(s.s.charAt(j))) {
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
        throw new ChatTemplateException(
            "format(): field {" + idx + "} has no argument (" + args.size() + " given)");
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
    return s.isEmpty()
        ? s
        : Character.toUpperCase(s.charAt(0)) + s.substring(1).toLowerCase(Locale.ROOT);
  }

  static Object filter(String name, Object v, List<Object> a, Map<String, Object> k) {
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
      case "first":
        {
          List<Object> l = iterate(v);
          return l.isEmpty() ? Undefined.INSTANCE : l.get(0);
        }
      case "last":
        {
          List<Object> l = iterate(v);
          return l.isEmpty() ? Undefined.INSTANCE : l.get(l.size() - 1);
        }
      case "reverse":
        {
          if (v instanceof Str s) {
            return slice(s, null, null, -1L);
          }
          List<Object> l = iterate(v);
          java.util.Collections.reverse(l);
          return l;
        }
      case "join":
        {
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
      case "d":
        {
          boolean boolMode = a.size() > 1 && truthy(a.get(1)) || truthy(k.get("boolean"));
          Object dflt =
              a.isEmpty()
                  ? (k.containsKey("default_value") ? k.get("default_value") : Str.EMPTY)
                  : a.get(0);
          if (v instanceof Undefined || boolMode && !truthy(v)) {
            return dflt;
          }
          return v;
        }
      case "replace":
        return str(v)
            .replace(str(a.get(0)).s, str(a.get(1)), a.size() > 2 ? (int) toLong(a.get(2)) : -1);
      case "tojson":
        {
          StringBuilder sb = new StringBuilder();
          List<Str> sources = new ArrayList<>();
          Object ind = k.containsKey("indent") ? k.get("indent") : (a.isEmpty() ? null : a.get(0));
          toJson(v, sb, sources, ind == null ? null : (int) toLong(ind), 0);
          return Str.taint(sb.toString(), sources.toArray(new Str[0]));
        }
      case "items":
        return ((Fn) method(v instanceof Map ? v : Map.of(), "items")).call(List.of(), Map.of());
      case "indent":
        {
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
      case "map":
        {
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
      case "rejectattr":
        {
          boolean attr = name.endsWith("attr");
          boolean keep = name.startsWith("select");
          List<Object> out = new ArrayList<>();
          for (Object o : iterate(v)) {
            Object x = attr ? getItem(o, a.get(0)) : o;
            int ti = attr ? 1 : 0;
            boolean ok =
                a.size() > ti ? test(str(a.get(ti)).s, x, a.subList(ti + 1, a.size())) : truthy(x);
            if (ok == keep) {
              out.add(o);
            }
          }
          return out;
        }
      case "unique":
        {
          List<Object> out = new ArrayList<>();
          for (Object o : iterate(v)) {
            if (!contains(out, o)) {
              out.add(o);
            }
          }
          return out;
        }
      case "sort":
        {
          List<Object> l = iterate(v);
          boolean rev = truthy(k.get("reverse"));
          Object attrName = k.get("attribute");
          l.sort(
              (x, y) ->
                  compare(
                      attrName == null ? x : getItem(x, attrName),
                      attrName == null ? y : getItem(y, attrName)));
          if (rev) {
            java.util.Collections.reverse(l);
          }
          return l;
        }
      case "round":
        {
          int prec = a.isEmpty() ? 0 : (int) toLong(a.get(0));
          double f = Math.pow(10, prec);
          return Math.round(toDouble(v) * f) / f;
        }
      default:
        throw new ChatTemplateException("unsupported template filter '" + name + "'");
    }
  }

  private static String escapeHtml(String s) {
    return s.replace("&", "&amp;")
        .replace("<", "&lt;")
        .replace(">", "&gt;")
        .replace("\"", "&#34;")
        .replace("'", "&#39;");
  }

  static boolean test(String name, Object v, List<Object> a) {
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
