package dev.lora4j.resilience;

import static org.junit.jupiter.api.Assertions.*;

import dev.lora4j.Aggregation;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.FloatBuffer;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.Test;

/**
 * Nearest-neighbour mixing before the median and the trimmed mean, the default of those rules: the
 * settings (parsed, printed, refused where a rule does not mix) and {@link Aggregation#apply}
 * against a reference written here from the definition (each worker replaced by the mean of itself
 * and its nearest others, n - f in all, then the rule per coordinate), bit for bit on random
 * inputs, continuous and with ties.
 */
class AggregationMixingTest {

  @Test
  void settings() {
    assertTrue(Aggregation.median().mixing());
    assertTrue(Aggregation.parse("trimmed-mean").mixing());
    assertTrue(Aggregation.parse("centered-clip").mixing());
    assertFalse(Aggregation.krum(1).mixing());
    assertFalse(Aggregation.mean().mixing());
    assertEquals(Aggregation.median().withoutMixing(), Aggregation.parse("median:no-mixing"));
    assertEquals(
        Aggregation.trimmedMean(2).withoutMixing(), Aggregation.parse("trimmed-mean:2:no-mixing"));
    assertEquals(
        Aggregation.trimmedMean(1).withoutMixing(), Aggregation.parse("Trimmed-Mean:no-mixing"));
    for (String s :
        List.of("median", "median:no-mixing", "trimmed-mean:2:no-mixing", "centered-clip")) {
      assertEquals(s, Aggregation.parse(s).toString());
    }
    IllegalArgumentException e =
        assertThrows(IllegalArgumentException.class, () -> Aggregation.parse("krum:1:no-mixing"));
    assertTrue(e.getMessage().contains("krum does not mix"), e.getMessage());
    e = assertThrows(IllegalArgumentException.class, () -> Aggregation.parse("mean:no-mixing"));
    assertTrue(e.getMessage().contains("mean does not mix"), e.getMessage());
    e = assertThrows(IllegalArgumentException.class, () -> Aggregation.parse("median:mixing"));
    assertTrue(e.getMessage().contains("no-mixing"), e.getMessage());
    assertThrows(
        IllegalArgumentException.class, () -> new Aggregation(Aggregation.Rule.KRUM, 1, true));
    // the tolerance is the rule's, mixing or not
    assertThrows(IllegalArgumentException.class, () -> Aggregation.median().check(2, "x"));
    assertThrows(IllegalArgumentException.class, () -> Aggregation.trimmedMean(3).check(6, "x"));
    Aggregation.trimmedMean(2).check(5, "x");
  }

  static double dist2(float[][] x, int a, int b) {
    double s = 0;
    for (int j = 0; j < x[a].length; j++) {
      double d = (double) x[a][j] - x[b][j];
      s += d * d;
    }
    return s;
  }

  static float[][] mix(float[][] x, int f) {
    int n = x.length, m = x[0].length;
    float[][] y = new float[n][m];
    for (int i = 0; i < n; i++) {
      final int row = i;
      List<Integer> others = new ArrayList<>();
      for (int k = 0; k < n; k++) if (k != i) others.add(k);
      others.sort((a, b) -> Double.compare(dist2(x, row, a), dist2(x, row, b))); // stable
      boolean[] in = new boolean[n];
      in[i] = true;
      for (int k = 0; k < n - f - 1; k++) in[others.get(k)] = true;
      int count = 0;
      for (boolean b : in) if (b) count++;
      for (int j = 0; j < m; j++) {
        double s = 0;
        for (int k = 0; k < n; k++) if (in[k]) s += x[k][j];
        y[i][j] = (float) (s / count);
      }
    }
    return y;
  }

  /** Per coordinate: the median (f < 0) or the mean after dropping f at each end. */
  static float[] sortedRule(float[][] x, int f) {
    int n = x.length, m = x[0].length;
    float[] out = new float[m];
    float[] col = new float[n];
    for (int j = 0; j < m; j++) {
      for (int i = 0; i < n; i++) col[i] = x[i][j];
      Arrays.sort(col); // -0 below +0, as the core's order
      if (f < 0) {
        out[j] = n % 2 == 1 ? col[n / 2] : (float) (0.5 * ((double) col[n / 2 - 1] + col[n / 2]));
      } else {
        double s = 0;
        for (int i = f; i < n - f; i++) s += col[i];
        out[j] = (float) (s / (n - 2 * f));
      }
    }
    return out;
  }

  static float[] apply(Aggregation a, float[][] x) {
    int n = x.length, m = x[0].length;
    FloatBuffer rows =
        ByteBuffer.allocateDirect(n * m * 4).order(ByteOrder.nativeOrder()).asFloatBuffer();
    for (float[] r : x) rows.put(r);
    rows.flip();
    FloatBuffer out =
        ByteBuffer.allocateDirect(m * 4).order(ByteOrder.nativeOrder()).asFloatBuffer();
    a.apply(n, m, rows, null, out);
    float[] o = new float[m];
    out.get(0, o);
    return o;
  }

  @Test
  void mixedRulesEqualTheReference() {
    Random rng = new Random(14);
    for (int n : new int[] {3, 4, 5, 6, 7, 8, 11}) {
      for (boolean ties : new boolean[] {false, true}) {
        int m = 300;
        float[][] x = new float[n][m];
        for (float[] r : x)
          for (int j = 0; j < m; j++)
            r[j] = ties ? (rng.nextInt(5) - 2) * 0.5f : rng.nextFloat() * 2 - 1;
        String tag = " n=" + n + (ties ? " ties" : "");
        assertArrayEquals(
            sortedRule(mix(x, (n - 1) / 2), -1), apply(Aggregation.median(), x), "median" + tag);
        assertArrayEquals(
            sortedRule(x, -1),
            apply(Aggregation.median().withoutMixing(), x),
            "median:no-mixing" + tag);
        for (int f = 0; 2 * f < n; f++) {
          assertArrayEquals(
              sortedRule(mix(x, f), f),
              apply(Aggregation.trimmedMean(f), x),
              "trimmed-mean:" + f + tag);
        }
      }
    }
  }
}
