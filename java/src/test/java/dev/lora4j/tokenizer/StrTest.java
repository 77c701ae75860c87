package dev.lora4j.tokenizer;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import java.util.Random;
import org.junit.jupiter.api.Test;

/**
 * Str keeps its owners as runs; these checks hold every operation to a model that keeps one owner a
 * char, on random strings of random owners.
 */
class StrTest {
  /** The model: text and one owner a char. */
  private record Model(String s, int[] own) {}

  private static int[] owners(Str x) {
    int[] o = new int[x.length()];
    for (int k = 0, start = 0; k < x.runCount(); start = x.runEnd(k), k++) {
      java.util.Arrays.fill(o, start, x.runEnd(k), x.runOwner(k));
    }
    return o;
  }

  private static void check(Model m, Str x, String what) {
    assertEquals(m.s, x.s, what);
    assertArrayEquals(m.own, owners(x), what + ": owners");
    for (int i = 0; i < x.length(); i++) {
      assertEquals(m.own[i], x.ownerAt(i), what + ": ownerAt(" + i + ")");
    }
    int first = Str.TEMPLATE;
    for (int o : m.own) {
      if (o != Str.TEMPLATE) {
        first = o;
        break;
      }
    }
    assertEquals(first, x.firstDataOwner(), what + ": firstDataOwner");
    // every span: whether it is template text alone, and the owner a token over it is taken from
    for (int a = 0; a <= m.own.length; a++) {
      for (int b = a; b <= m.own.length; b++) {
        boolean template = true;
        int content = Str.TEMPLATE;
        int field = Str.TEMPLATE;
        for (int c = a; c < b; c++) {
          template &= m.own[c] == Str.TEMPLATE;
          if (m.own[c] >= 0 && content == Str.TEMPLATE) content = m.own[c];
          if (m.own[c] < Str.TEMPLATE && field == Str.TEMPLATE) field = m.own[c];
        }
        assertEquals(template, x.templateOnly(a, b), what + ": templateOnly " + a + ".." + b);
        assertEquals(
            content != Str.TEMPLATE ? content : field,
            x.dataOwner(a, b),
            what + ": dataOwner " + a + ".." + b);
      }
    }
    // the runs: in order, covering the text, neighbours of different owners
    int start = 0;
    for (int k = 0; k < x.runCount(); k++) {
      int end = x.runEnd(k);
      assertEquals(true, end > start, what + ": run " + k + " is empty");
      if (k > 0) {
        assertEquals(true, x.runOwner(k) != x.runOwner(k - 1), what + ": runs " + k + " join");
      }
      start = end;
    }
    assertEquals(x.length(), start, what + ": runs cover the text");
  }

  private static final String ALPHABET = "ab \n[]";

  private static Model modelOf(String s, int owner) {
    int[] o = new int[s.length()];
    java.util.Arrays.fill(o, owner);
    return new Model(s, o);
  }

  private static Model concat(Model a, Model b) {
    int[] o = new int[a.own.length + b.own.length];
    System.arraycopy(a.own, 0, o, 0, a.own.length);
    System.arraycopy(b.own, 0, o, a.own.length, b.own.length);
    return new Model(a.s + b.s, o);
  }

  private static Model sub(Model m, int a, int b) {
    return new Model(m.s.substring(a, b), java.util.Arrays.copyOfRange(m.own, a, b));
  }

  @Test
  void everyOperationKeepsTheOwnersOfTheCharsItCopies() {
    Random rnd = new Random(7);
    for (int trial = 0; trial < 3000; trial++) {
      // a string of 0-6 pieces, each of one owner (the template, a message's content or field)
      Str x = Str.EMPTY;
      Model m = new Model("", new int[0]);
      Str.Builder built = new Str.Builder();
      int pieces = rnd.nextInt(7);
      for (int p = 0; p < pieces; p++) {
        StringBuilder t = new StringBuilder();
        int len = rnd.nextInt(5);
        for (int i = 0; i < len; i++) {
          t.append(ALPHABET.charAt(rnd.nextInt(ALPHABET.length())));
        }
        int owner =
            switch (rnd.nextInt(3)) {
              case 0 -> Str.TEMPLATE;
              case 1 -> rnd.nextInt(3);
              default -> Str.fieldOwner(rnd.nextInt(3));
            };
        Str piece = owner == Str.TEMPLATE ? Str.of(t.toString()) : Str.owned(t.toString(), owner);
        x = x.concat(piece);
        built.append(piece);
        m = concat(m, modelOf(t.toString(), owner));
      }
      check(m, x, "concat " + trial);
      check(m, built.build(), "builder " + trial);
      assertEquals(x.length(), built.length());

      int a = rnd.nextInt(m.s.length() + 1);
      int b = a + rnd.nextInt(m.s.length() - a + 1);
      check(sub(m, a, b), x.sub(a, b), "sub " + trial);

      boolean left = rnd.nextBoolean();
      boolean right = rnd.nextBoolean();
      int sa = 0;
      int sb = m.s.length();
      while (left && sa < sb && Character.isWhitespace(m.s.charAt(sa))) {
        sa++;
      }
      while (right && sb > sa && Character.isWhitespace(m.s.charAt(sb - 1))) {
        sb--;
      }
      check(sub(m, sa, sb), x.strip(left, right, null), "strip " + trial);

      check(
          new Model(m.s.toUpperCase(java.util.Locale.ROOT), m.own),
          x.mapText(m.s.toUpperCase(java.util.Locale.ROOT)),
          "mapText " + trial);

      // replace: the replacement takes the owner of the text it replaces when that is message
      // text, else its own owners
      String from = rnd.nextBoolean() ? "a" : "b ";
      Str to = rnd.nextBoolean() ? Str.of("XY") : Str.owned("Z", 1);
      Model expected = new Model("", new int[0]);
      int i = 0;
      while (true) {
        int j = m.s.indexOf(from, i);
        if (j < 0) {
          break;
        }
        expected = concat(expected, sub(m, i, j));
        int o = Str.TEMPLATE;
        for (int c = j; c < j + from.length(); c++) {
          if (m.own[c] != Str.TEMPLATE) {
            o = m.own[c];
            break;
          }
        }
        expected =
            concat(expected, o == Str.TEMPLATE ? new Model(to.s, owners(to)) : modelOf(to.s, o));
        i = j + from.length();
      }
      expected = concat(expected, sub(m, i, m.s.length()));
      check(expected, x.replace(from, to, -1), "replace " + trial);
    }
  }
}
