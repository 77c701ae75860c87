package dev.lora4j;

import static org.junit.jupiter.api.Assertions.*;

import java.util.Arrays;
import java.util.Random;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;

/** Sampling's definition (Sampler's class comment) against a plain reference, and its law. */
class SamplerTest {
  static final long TOP = 1L << Sampler.WEIGHT_BITS;

  /** NaN as -inf (so last), then Float.compare's order descending, equal values by index. */
  static Integer[] fullOrder(float[] v) {
    Integer[] o = new Integer[v.length];
    for (int i = 0; i < v.length; i++) o[i] = i;
    Arrays.sort(
        o,
        (a, b) -> {
          float x = Float.isNaN(v[a]) ? Float.NEGATIVE_INFINITY : v[a];
          float y = Float.isNaN(v[b]) ? Float.NEGATIVE_INFINITY : v[b];
          int c = Float.compare(y, x);
          return c != 0 ? c : Integer.compare(a, b);
        });
    return o;
  }

  /** The class comment's definition, step by step over the full order (fullOrder(x)). */
  static int reference(float[] x, Integer[] order, GenerationConfig cfg, SplittableRandom rng) {
    int v = x.length;
    float max = Float.NEGATIVE_INFINITY;
    for (float f : x) if (!Float.isNaN(f)) max = Math.max(max, f);
    if (max == Float.NEGATIVE_INFINITY) return Generator.argmax(x);
    int keep = cfg.topK() > 0 ? Math.min(cfg.topK(), v) : v;
    long z = 0;
    for (int j = 0; j < keep; j++) z += Sampler.weight(x[order[j]], max, cfg.temperature());
    int cut = keep;
    if (cfg.topP() < 1) {
      long need = (long) Math.ceil(cfg.topP() * (double) z), cum = 0;
      need = Math.max(1, Math.min(z, need));
      for (int j = 0; j < keep; j++) {
        cum += Sampler.weight(x[order[j]], max, cfg.temperature());
        if (cum >= need) {
          cut = j + 1;
          break;
        }
      }
    }
    boolean[] in = new boolean[v];
    for (int j = 0; j < cut; j++) in[order[j]] = true;
    long total = 0;
    for (int i = 0; i < v; i++) if (in[i]) total += Sampler.weight(x[i], max, cfg.temperature());
    long u = rng.nextLong(total);
    for (int i = 0; i < v; i++) {
      if (!in[i]) continue;
      u -= Sampler.weight(x[i], max, cfg.temperature());
      if (u < 0) return i;
    }
    throw new AssertionError();
  }

  @Test
  void topOrderIsTheDescendingOrderWithNaNLast() {
    Random r = new Random(5);
    for (int trial = 0; trial < 20; trial++) {
      float[] v = new float[trial == 0 ? 1 : 2000 + trial];
      for (int i = 0; i < v.length; i++) // many ties: a tenth of the values are small integers
      v[i] = r.nextInt(10) == 0 ? Math.round(r.nextGaussian() * 3) : (float) r.nextGaussian();
      if (v.length > 8) {
        float[] odd = {-0.0f, 0.0f, Float.NaN, Float.POSITIVE_INFINITY, Float.NEGATIVE_INFINITY};
        for (float o : odd) v[r.nextInt(v.length)] = o;
        v[1] = Float.intBitsToFloat(0x7fc00001); // a NaN of other bits: still -inf
      }
      int[] all = Arrays.stream(fullOrder(v)).mapToInt(Integer::intValue).toArray();
      for (int k : new int[] {1, 2, 50, 1000, v.length, v.length + 3}) {
        assertArrayEquals(
            Arrays.copyOf(all, Math.min(k, v.length)),
            Sampler.topOrder(v, k),
            "trial " + trial + ", k " + k);
      }
    }
  }

  @Test
  void weightsAreTheScaledExponential() {
    // 2^40 e^d within 1e-11 relative over the weights' range, exactly 2^40 at the largest logit
    Random r = new Random(3);
    for (int i = 0; i < 200_000; i++) {
      double d = i < 1000 ? -i * 0.0278 : -27.8 * r.nextDouble();
      double want = Math.scalb(Math.exp(d), Sampler.WEIGHT_BITS);
      double got = Sampler.expScaled(d);
      assertEquals(want, got, want * 1e-11, "d " + d);
    }
    assertEquals(TOP, Sampler.weight(3.5f, 3.5f, 0.7));
    assertEquals(TOP, Sampler.weight(-0.0f, 0.0f, 0.7));
    assertEquals((long) Math.scalb(Math.exp(-1.0 / 0.5), 40), Sampler.weight(1f, 2f, 0.5), 1.0);
    assertEquals(0, Sampler.weight(-30f, 0f, 1.0)); // e^-30 2^40 < 1
    assertEquals(0, Sampler.weight(Float.NaN, 0f, 1.0));
    assertEquals(0, Sampler.weight(Float.NEGATIVE_INFINITY, 0f, 1.0));
    float inf = Float.POSITIVE_INFINITY;
    assertEquals(1, Sampler.weight(inf, inf, 1.0));
    assertEquals(0, Sampler.weight(1e30f, inf, 1.0));
    // an infinite temperature: every finite logit weighs as the largest
    assertEquals(TOP, Sampler.weight(-1e30f, 1e30f, Double.POSITIVE_INFINITY));
  }

  @Test
  void theExponentialsBitsAreTheCoresToo() {
    // {d, 2^40 e^d} bit for bit: native/tests/test_sampler.cpp holds the same table for the core's
    // copy (model/sampler.cpp), so that both draw the same tokens
    long[][] table = {
      {0x0000000000000000L, 0x4270000000000000L},
      {0x8000000000000000L, 0x4270000000000000L},
      {0x81a56e1fc2f8f359L, 0x4270000000000000L},
      {0xbfd62e42fefa39eeL, 0x4266a09e667e50d1L},
      {0xbfd62e42fefa39efL, 0x4266a09e667e50d0L},
      {0xbfe0000000000000L, 0x426368b2fc6f95afL},
      {0xbff0000000000000L, 0x42578b56362ca968L},
      {0xc005bf0a8b145769L, 0x4230e49787e20548L},
      {0xc015000000000000L, 0x41f57e6bfe8dcc17L},
      {0xc024000000000000L, 0x4187cd79b5644bf5L},
      {0xc02bb9d3beb8c86bL, 0x4130000000000000L},
      {0xc0341f9add373963L, 0x409f4c3baeb287efL},
      {0xc03b000000000000L, 0x4000885298767e9bL},
      {0xc03bbae147ae147bL, 0x3fefde6097b0621cL},
      {0xc03bcccccccccccaL, 0x3fedb6d21217f050L},
      {0xc03bcccccccccccdL, 0x3fedb6d21217eff7L},
      {0xbf12599ed7c6fbd2L, 0x426fff6d3459f97bL},
      {0xc00aaaaaaaaaaaabL, 0x422243dc957d03ecL},
      {0xbfe62e42fefa39efL, 0x4260000000000000L},
      {0xc029000000000000L, 0x414f42ed3f68e691L}
    };
    for (long[] e : table) {
      double d = Double.longBitsToDouble(e[0]);
      assertEquals(e[1], Double.doubleToRawLongBits(Sampler.expScaled(d)), "d " + d);
    }
  }

  /**
   * Trial trial's logits over v tokens: normal with a spread of 1, 4 or 0.2 by turns; every other
   * trial ties at the top and across a nucleus' edge; every fourth a NaN, a -inf and a -0.0.
   */
  static float[] trialLogits(Random r, int trial, int v) {
    float[] x = new float[v];
    double spread = trial % 3 == 0 ? 1 : trial % 3 == 1 ? 4 : 0.2;
    for (int i = 0; i < v; i++) x[i] = (float) (r.nextGaussian() * spread);
    if (trial % 2 == 1 && v > 100) {
      for (int i = 0; i < 40; i++) x[r.nextInt(v)] = 3.5f;
      for (int i = 0; i < 400; i++) x[r.nextInt(v)] = 1.25f;
    }
    if (trial % 4 == 3) {
      x[r.nextInt(v)] = Float.NaN;
      x[r.nextInt(v)] = Float.NEGATIVE_INFINITY;
      x[r.nextInt(v)] = -0.0f;
    }
    return x;
  }

  @Test
  void sampleFollowsTheDefinition() {
    Random r = new Random(11);
    for (int trial = 0; trial < 12; trial++) {
      int v = trial < 4 ? 7 + trial : 32000;
      float[] x = trialLogits(r, trial, v);
      Integer[] order = fullOrder(x);
      for (int k : new int[] {0, 1, 3, 50, 4000, v + 3}) {
        for (double p : new double[] {1.0, 0.9, 0.5, 1e-9, 0.999999}) {
          for (double t : new double[] {0.7, 1.0, 1e-3, 50}) {
            GenerationConfig c = new GenerationConfig(1, t, k, p, 1, 100);
            SplittableRandom a = new SplittableRandom(trial), b = new SplittableRandom(trial);
            for (int draw = 0; draw < (v > 100 ? 8 : 40); draw++) {
              assertEquals(
                  reference(x, order, c, b),
                  Sampler.sample(x, c, a),
                  "trial " + trial + ", k " + k + ", p " + p + ", t " + t + ", draw " + draw);
            }
          }
        }
      }
    }
  }

  @Test
  void infiniteAndMissingLogits() {
    float inf = Float.POSITIVE_INFINITY, nan = Float.NaN;
    GenerationConfig c = new GenerationConfig(1, 0.8, 0, 0.9, 1, 100);
    SplittableRandom r = new SplittableRandom(2);
    int[] seen = new int[5];
    // +inf tokens share the draw (softmax's limit), whatever the top-p
    for (int i = 0; i < 2000; i++)
      seen[Sampler.sample(new float[] {1e30f, inf, 0, inf, nan}, c, r)]++;
    assertEquals(0, seen[0] + seen[2] + seen[4]);
    assertTrue(seen[1] > 800 && seen[3] > 800, Arrays.toString(seen));
    // NaN and -inf are never drawn
    for (int i = 0; i < 2000; i++) {
      int t = Sampler.sample(new float[] {nan, -inf, 0.5f, nan, 0.25f}, c.withTopP(1.0), r);
      assertTrue(t == 2 || t == 4, "token " + t);
    }
    // nothing to draw: the greedy token
    assertEquals(0, Sampler.sample(new float[] {nan, nan}, c, r));
    assertEquals(0, Sampler.sample(new float[] {-inf, -inf}, c, r));
    assertThrows(
        IllegalArgumentException.class,
        () -> Sampler.sample(new float[] {1f}, c.withTemperature(0), r));
  }

  @Test
  void drawsFollowTheSoftmaxOfTheNucleus() {
    // frequencies over 400,000 draws within 5 standard deviations of the kept tokens' softmax,
    // renormalized: no top-p, top-p 0.8 (tokens 0..2 of the order), top-k 2
    float[] x = {1f, 2f, 0.5f, 0f, -1f, -3f, 1.5f};
    double t = 0.8;
    double[] e = new double[x.length];
    for (int i = 0; i < x.length; i++) e[i] = Math.exp((x[i] - 2.0) / t);
    double zAll = Arrays.stream(e).sum();
    boolean[][] kept = new boolean[3][x.length];
    Arrays.fill(kept[0], true);
    // order: 1 (2.0), 6 (1.5), 0 (1.0), 2, 3, 4, 5; p 0.8 needs 1, 6 and 0
    assertTrue((e[1] + e[6]) / zAll < 0.8 && (e[1] + e[6] + e[0]) / zAll >= 0.8);
    kept[1][1] = kept[1][6] = kept[1][0] = true;
    kept[2][1] = kept[2][6] = true;
    GenerationConfig[] cfgs = {
      new GenerationConfig(1, t, 0, 1.0, 1, 100),
      new GenerationConfig(1, t, 0, 0.8, 1, 100),
      new GenerationConfig(1, t, 2, 1.0, 1, 100)
    };
    int n = 400_000;
    for (int c = 0; c < cfgs.length; c++) {
      SplittableRandom r = new SplittableRandom(c);
      int[] count = new int[x.length];
      for (int i = 0; i < n; i++) count[Sampler.sample(x, cfgs[c], r)]++;
      double z = 0;
      for (int i = 0; i < x.length; i++) if (kept[c][i]) z += e[i];
      for (int i = 0; i < x.length; i++) {
        double p = kept[c][i] ? e[i] / z : 0;
        double sd = Math.sqrt(n * p * (1 - p));
        assertEquals(n * p, count[i], 5 * sd + 1e-9, "config " + c + ", token " + i);
      }
    }
  }

  @Test
  void topPKeepsTheNucleus() {
    float[] logits = {5f, 4f, 0f, -1f};
    SplittableRandom r = new SplittableRandom(1);
    GenerationConfig c = new GenerationConfig(1, 1.0, 0, 0.5, 1, 100);
    for (int i = 0; i < 200; i++) assertEquals(0, Sampler.sample(logits, c, r));
    GenerationConfig c2 = new GenerationConfig(1, 1.0, 0, 0.95, 1, 100);
    boolean sawOne = false;
    for (int i = 0; i < 400; i++) {
      int t = Sampler.sample(logits, c2, r);
      assertTrue(t == 0 || t == 1, "token " + t + " outside the 0.95 nucleus");
      sawOne |= t == 1;
    }
    assertTrue(sawOne);
  }
}
