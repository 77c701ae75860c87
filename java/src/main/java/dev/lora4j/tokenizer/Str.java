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

  /** owner of each char, or null when every char belongs to the template */
  final int[] own;

  Str(String s, int[] own) {
    this.s = s;
    this.own = own;
  }

  static Str of(String s) {
    return new Str(s, null);
  }

  static Str owned(String s, int owner) {
    int[] o = new int[s.length()];
    Arrays.fill(o, owner);
    return new Str(s, o);
  }

  static int fieldOwner(int message) {
    return -2 - message;
  }

  int length() {
    return s.length();
  }

  int ownerAt(int i) {
    return own == null ? TEMPLATE : own[i];
  }

  /**
   * @return the first non-template owner of any char, or TEMPLATE
   */
  int firstDataOwner() {
    if (own == null) {
      return TEMPLATE;
    }
    for (int o : own) {
      if (o != TEMPLATE) {
        return o;
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
    int[] no = null;
    if (own != null || o.own != null) {
      no = new int[s.length() + o.s.length()];
      copyOwners(no, 0);
      o.copyOwners(no, s.length());
    }
    return new Str(s + o.s, no);
  }

  /** Writes each char's owner into {@code dst} from {@code at} on. */
  void copyOwners(int[] dst, int at) {
    if (own == null) {
      Arrays.fill(dst, at, at + s.length(), TEMPLATE);
    } else {
      System.arraycopy(own, 0, dst, at, s.length());
    }
  }

  Str sub(int a, int b) {
    return new Str(s.substring(a, b), own == null ? null : Arrays.copyOfRange(own, a, b));
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
      return new Str(result, own);
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
    return chars == null ? Character.isWhitespace(c) : chars.indexOf(c) >= 0;
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
