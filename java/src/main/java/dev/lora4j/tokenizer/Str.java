package dev.lora4j.tokenizer;

import java.util.Arrays;

/**
 * A string value of the template interpreter that remembers, per char, where it came from: the
 * template ({@link #TEMPLATE}), the content of message {@code m} ({@code m >= 0}) or another field
 * of message {@code m} such as its role ({@code fieldOwner(m)}). Every string operation keeps the
 * owners of the chars it copies; an operation that cannot say which char came from where gives its
 * whole result the first non-template owner of its inputs ({@link #taint}), so message text can
 * never turn into template text (and so never into control tokens).
 */
final class Str implements Comparable<Str> {
  static final int TEMPLATE = -1;
  static final Str EMPTY = new Str("", null);

  final String s;

  /**
   * The owners as runs: {@code runs[2k]} is where run k ends (exclusive), {@code runs[2k + 1]} its
   * owner; the runs cover [0, length) in order and two neighbours never have the same owner. Null
   * when every char belongs to the template. A conversation's text has a few runs a message, so the
   * interpreter's copies and joins move a few ints instead of one per char.
   */
  private final int[] runs;

  private Str(String s, int[] runs) {
    this.s = s;
    this.runs = runs;
  }

  static Str of(String s) {
    return new Str(s, null);
  }

  static Str owned(String s, int owner) {
    return owner == TEMPLATE || s.isEmpty() ? of(s) : new Str(s, new int[] {s.length(), owner});
  }

  static int fieldOwner(int message) {
    return -2 - message;
  }

  int length() {
    return s.length();
  }

  /** Runs of one owner: how many. */
  int runCount() {
    return runs != null ? runs.length / 2 : s.isEmpty() ? 0 : 1;
  }

  /** Where run k ends (exclusive). */
  int runEnd(int k) {
    return runs != null ? runs[2 * k] : s.length();
  }

  /** The owner of run k. */
  int runOwner(int k) {
    return runs != null ? runs[2 * k + 1] : TEMPLATE;
  }

  int ownerAt(int i) {
    return runs == null ? TEMPLATE : runs[2 * runAt(i) + 1];
  }

  /** The run holding char i (runs not null). */
  private int runAt(int i) {
    int lo = 0;
    int hi = runs.length / 2 - 1;
    while (lo < hi) {
      int mid = (lo + hi) >>> 1;
      if (runs[2 * mid] <= i) {
        lo = mid + 1;
      } else {
        hi = mid;
      }
    }
    return lo;
  }

  /** Whether every char of [a, b) belongs to the template. */
  boolean templateOnly(int a, int b) {
    if (runs == null || a >= b) {
      return true;
    }
    for (int k = runAt(a); k < runs.length / 2 && (k == 0 || runs[2 * k - 2] < b); k++) {
      if (runs[2 * k + 1] != TEMPLATE) {
        return false;
      }
    }
    return true;
  }

  /**
   * The owner a span [a, b) of chars is taken from: the first message content among them, else the
   * first other message field, else the template.
   */
  int dataOwner(int a, int b) {
    int field = TEMPLATE;
    if (runs == null || a >= b) {
      return field;
    }
    for (int k = runAt(a); k < runs.length / 2 && (k == 0 || runs[2 * k - 2] < b); k++) {
      int o = runs[2 * k + 1];
      if (o >= 0) {
        return o;
      }
      if (o != TEMPLATE && field == TEMPLATE) {
        field = o;
      }
    }
    return field;
  }

  /**
   * @return the first non-template owner of any char, or TEMPLATE
   */
  int firstDataOwner() {
    if (runs != null) {
      for (int k = 1; k < runs.length; k += 2) {
        if (runs[k] != TEMPLATE) {
          return runs[k];
        }
      }
    }
    return TEMPLATE;
  }

  Str concat(Str o) {
    if (o.s.isEmpty()) {
      return this;
    }
    if (s.isEmpty()) {
      return o;
    }
    String text = s + o.s;
    if (runs == null && o.runs == null) {
      return of(text);
    }
    Runs r = new Runs(runCount() + o.runCount());
    r.add(this, 0);
    r.add(o, s.length());
    return new Str(text, r.toArray());
  }

  Str sub(int a, int b) {
    String text = s.substring(a, b);
    if (runs == null || a >= b) {
      return of(text);
    }
    Runs r = new Runs(4);
    for (int k = 0, start = 0; k < runs.length && start < b; start = runs[k], k += 2) {
      int lo = Math.max(start, a);
      int hi = Math.min(runs[k], b);
      if (lo < hi) {
        r.add(hi - a, runs[k + 1]);
      }
    }
    return new Str(text, r.toArray());
  }

  /**
   * Runs being built: ends and owners, a run joined to the one before when its owner is the same.
   */
  static final class Runs {
    private int[] a;
    private int n;

    Runs(int runs) {
      a = new int[Math.max(2, 2 * runs)];
    }

    /** Extends the runs to {@code end} (exclusive) with chars of {@code owner}. */
    void add(int end, int owner) {
      if (n > 0 && a[n - 1] == owner) {
        a[n - 2] = end;
        return;
      }
      if (n == a.length) {
        a = Arrays.copyOf(a, 2 * n);
      }
      a[n++] = end;
      a[n++] = owner;
    }

    /** Appends the runs of {@code x}, placed at {@code offset}. */
    void add(Str x, int offset) {
      for (int k = 0; k < x.runCount(); k++) {
        add(offset + x.runEnd(k), x.runOwner(k));
      }
    }

    /** The runs, or null when there are none but the template's. */
    int[] toArray() {
      return n == 0 || (n == 2 && a[1] == TEMPLATE) ? null : Arrays.copyOf(a, n);
    }
  }

  /** A string built by appends, keeping the owners of what is appended. */
  static final class Builder {
    private final StringBuilder sb = new StringBuilder();
    private final Runs runs = new Runs(8);

    void append(Str x) {
      int at = sb.length();
      sb.append(x.s);
      runs.add(x, at);
    }

    int length() {
      return sb.length();
    }

    Str build() {
      return new Str(sb.toString(), runs.toArray());
    }
  }

  /** A new string whose every char is owned by the first non-template owner among the sources. */
  static Str taint(String result, Str... sources) {
    for (Str src : sources) {
      int o = src.firstDataOwner();
      if (o != TEMPLATE) {
        return owned(result, o);
      }
    }
    return of(result);
  }

  /** Same text transformed char by char (upper, lower...): owners kept when the length is kept. */
  Str mapText(String result) {
    if (result.length() == s.length()) {
      return new Str(result, runs);
    }
    return taint(result, this);
  }

  Str strip(boolean left, boolean right, String chars) {
    int a = 0;
    int b = s.length();
    while (left && a < b && isStripped(s.charAt(a), chars)) {
      a++;
    }
    while (right && b > a && isStripped(s.charAt(b - 1), chars)) {
      b--;
    }
    return sub(a, b);
  }

  private static boolean isStripped(char c, String chars) {
    return chars == null ? isPySpace(c) : chars.indexOf(c) >= 0;
  }

  /**
   * Python's str.isspace for one UTF-16 unit (every such character is in the BMP): Java's
   * isWhitespace less its exclusions (the no-break spaces U+00A0, U+2007, U+202F) plus U+0085 (next
   * line), as Python strips and splits on them, and so Jinja's trim / strip / split.
   */
  static boolean isPySpace(char c) {
    return Character.isWhitespace(c) || c == 0x85 || c == 0xA0 || c == 0x2007 || c == 0x202F;
  }

  Str replace(String from, Str to, int count) {
    if (from.isEmpty()) {
      return taint(count < 0 ? s.replace("", to.s) : s, this, to);
    }
    Str out = EMPTY;
    int i = 0;
    int done = 0;
    while (count < 0 || done < count) {
      int j = s.indexOf(from, i);
      if (j < 0) {
        break;
      }
      out = out.concat(sub(i, j));
      // the replacement text takes the owner of the text it replaces when that is message text
      int o = sub(j, j + from.length()).firstDataOwner();
      out = out.concat(o == TEMPLATE ? to : owned(to.s, o));
      i = j + from.length();
      done++;
    }
    return out.concat(sub(i, s.length()));
  }

  @Override
  public boolean equals(Object o) {
    return o instanceof Str x && x.s.equals(s);
  }

  @Override
  public int hashCode() {
    return s.hashCode();
  }

  @Override
  public int compareTo(Str o) {
    return s.compareTo(o.s);
  }

  @Override
  public String toString() {
    return s;
  }
}
