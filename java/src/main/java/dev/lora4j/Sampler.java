package dev.lora4j;

import java.util.Arrays;
import java.util.random.RandomGenerator;

/**
 * One draw from a step's logits with temperature, top-k and top-p (nucleus), in integer weights.
 *
 * <p>Token i's weight is {@code w(i) = floor(2^40 E((x_i - max) / T))}: x_i its logit, max the
 * largest logit, T the temperature, E an exponential of its own (range reduction by ln 2, a
 * degree-9 polynomial, a relative error under 1e-11) that uses only Java's IEEE double arithmetic,
 * so that the same logits and seed draw the same token on every JVM and CPU. The most likely token
 * weighs 2^40; a token under 2^-40 of its probability weighs 0 (for 32768 tokens at most ~3e-8 of
 * probability, never drawn). NaN and -inf logits weigh 0; if the largest logit is +inf, the +inf
 * tokens weigh 1 each and the rest 0 (softmax's limit). With nothing to draw (every logit NaN or
 * -inf) the draw is {@link Generator#argmax}'s token.
 *
 * <p>The tokens kept: the top k in descending logit order (equal logits by index, NaN as -inf), all
 * with k = 0; then the nucleus, the shortest prefix of that order whose weight reaches {@code
 * ceil(p z)}, z the kept tokens' total weight (all kept with p = 1). One {@code
 * rng.nextLong(total)} then picks a nucleus token, walking the nucleus in vocabulary order. Weights
 * are integers, so z and every partial sum are exact whatever the order of their terms: the nucleus
 * is found without ordering the vocabulary. Its boundary is found by buckets of the logits'
 * distance to the largest (a sixteenth of T wide); only the tokens of the bucket where the weight
 * reaches {@code ceil(p z)} are ordered. With top-k, the k tokens are selected by one pass with a
 * heap.
 *
 * <p>The arithmetic (the weights' formula, exact sums, the walk's order) is the definition; any
 * implementation that follows it draws the same token for the same random value. The native core
 * has one ({@code lora4j_sample}, {@code lora4j_decode_sample}: native/src/model/sampler.cpp),
 * which with a {@link SplitMix64} of the same state draws the same tokens (NativeSamplerTest). The
 * distribution is softmax(x / T) restricted to the kept tokens to within the weights' resolution.
 */
public final class Sampler {
  private Sampler() {}

  /** Weight of the most likely token: the probabilities' resolution is 2^-40 of its. */
  static final int WEIGHT_BITS = 40;

  /** Buckets of the logits' distance to the largest, in units of T: 16 a unit down to -27.8. */
  private static final int BUCKETS_PER_UNIT = 16;

  /** Below this distance (in units of T) a token's weight is 0: 2^40 e^-27.8 < 1. */
  private static final double LAST_DISTANCE = 27.8;

  private static final int BUCKETS = (int) Math.ceil(LAST_DISTANCE * BUCKETS_PER_UNIT) + 1;

  /** sampleAll's candidates: logits within this many T of the largest (a margin over 27.8). */
  private static final double CANDIDATE_DISTANCE = 27.9;

  /**
   * The token drawn from logits with cfg's temperature (> 0), top-k and top-p, by one {@code
   * rng.nextLong(total)} (none when nothing is drawable).
   */
  public static int sample(float[] logits, GenerationConfig cfg, RandomGenerator rng) {
    if (!(cfg.temperature() > 0))
      throw new IllegalArgumentException("sampling needs a temperature > 0");
    int v = logits.length;
    if (v == 0) throw new IllegalArgumentException("no logits");
    double t = cfg.temperature();
    int k = cfg.topK() > 0 ? Math.min(cfg.topK(), v) : v;
    if (k < v) {
      int[] top = topOrder(logits, k); // descending order, NaN last: top[0] is the largest
      float max = logits[top[0]];
      if (!(max > Float.NEGATIVE_INFINITY)) return Generator.argmax(logits); // all NaN or -inf
      return sampleTopK(logits, top, max, t, cfg.topP(), rng);
    }
    float max = Float.NEGATIVE_INFINITY;
    for (float x : logits) if (x > max) max = x;
    if (max == Float.NEGATIVE_INFINITY) return Generator.argmax(logits); // all NaN or -inf
    return sampleAll(logits, max, t, cfg.topP(), rng);
  }

  /**
   * Token i's weight (see the class): {@code floor(2^40 E((x - max) / t))}, 0 for NaN and -inf;
   * with max +inf, 1 for +inf and 0 otherwise.
   */
  static long weight(float x, float max, double t) {
    if (max == Float.POSITIVE_INFINITY) return x == Float.POSITIVE_INFINITY ? 1 : 0;
    if (!(x > Float.NEGATIVE_INFINITY)) return 0; // NaN, -inf
    return weightAt(((double) x - max) / t); // <= 0, the difference of two floats exact
  }

  /** The weight of a token at distance d = (x - max) / T (<= 0): 0 below -27.8. */
  private static long weightAt(double d) {
    return d < -LAST_DISTANCE ? 0 : (long) expScaled(d);
  }

  private static final double LOG2E = 1.4426950408889634;
  private static final double LN2_HI = 6.93147180369123816490e-01; // 32 bits: k LN2_HI is exact
  private static final double LN2_LO = 1.90821492927058770002e-10;
  private static final double ROUND = 0x1.8p52; // adding and subtracting it rounds to an integer

  /**
   * 2^40 e^d for -27.8 <= d <= 0: d = k ln 2 + r, |r| <= ln 2 / 2, e^r by its Taylor polynomial of
   * degree 9 in Estrin's grouping (truncation under 1e-11 relative), times 2^(40 + k) exactly.
   */
  static double expScaled(double d) {
    double kd = (d * LOG2E + ROUND) - ROUND;
    double r = (d - kd * LN2_HI) - kd * LN2_LO;
    double r2 = r * r, r4 = r2 * r2;
    double p =
        (1 + r)
            + r2 * (1.0 / 2 + r * (1.0 / 6))
            + r4
                * ((1.0 / 24 + r * (1.0 / 120))
                    + r2 * (1.0 / 720 + r * (1.0 / 5040))
                    + r4 * (1.0 / 40320 + r * (1.0 / 362880)));
    int e = WEIGHT_BITS + (int) kd; // >= 40 - 41
    return p * Double.longBitsToDouble((long) (e + 1023) << 52);
  }

  /** The top-k path: top, the k first of the order, then their nucleus and the draw. */
  private static int sampleTopK(
      float[] logits, int[] top, float max, double t, double topP, RandomGenerator rng) {
    int k = top.length;
    long[] w = new long[k];
    long z = 0;
    for (int j = 0; j < k; j++) z += w[j] = weight(logits[top[j]], max, t);
    int cut = k;
    if (topP < 1) {
      long need = need(z, topP), cum = 0;
      for (int j = 0; j < k; j++) {
        cum += w[j];
        if (cum >= need) {
          cut = j + 1;
          break;
        }
      }
    }
    // walk the nucleus in vocabulary order
    long[] byIndex = new long[cut];
    for (int j = 0; j < cut; j++) byIndex[j] = ((long) top[j] << 32) | j;
    Arrays.sort(byIndex);
    long total = 0;
    for (int j = 0; j < cut; j++) total += w[j];
    long u = rng.nextLong(total);
    for (int j = 0; j < cut; j++) {
      int at = (int) byIndex[j];
      u -= w[at];
      if (u < 0) return top[at];
    }
    throw new AssertionError("u below the nucleus' total weight");
  }

  /** Per-thread buffers of sampleAll, grown to the largest vocabulary seen. */
  private static final class Scratch {
    int[] idx = new int[0];
    long[] w = new long[0];
    short[] bucket = new short[0];

    Scratch fit(int v) {
      if (idx.length < v) {
        idx = new int[v];
        w = new long[v];
        bucket = new short[v];
      }
      return this;
    }
  }

  private static final ThreadLocal<Scratch> SCRATCH = ThreadLocal.withInitial(Scratch::new);

  /**
   * Every token kept. The candidates (logits within 27.9 T of the largest: every token whose weight
   * can be above 0, in vocabulary order) are gathered first, then their weights and, for top-p, the
   * buckets of their distance to the largest; the nucleus' last bucket is ordered alone. Tokens of
   * weight 0 are never drawn, so the nucleus and the walk need only the candidates.
   */
  private static int sampleAll(
      float[] logits, float max, double t, double topP, RandomGenerator rng) {
    int v = logits.length;
    Scratch s = SCRATCH.get().fit(v);
    int[] idx = s.idx;
    long[] w = s.w;
    short[] bucket = s.bucket;
    int n = 0;
    if (max == Float.POSITIVE_INFINITY) {
      for (int i = 0; i < v; i++) {
        idx[n] = i;
        n += logits[i] == Float.POSITIVE_INFINITY ? 1 : 0;
      }
    } else {
      // below lo every weight is 0; NaN and -inf are never candidates
      double lo = Math.max(max - CANDIDATE_DISTANCE * t, -Float.MAX_VALUE);
      for (int i = 0; i < v; i++) {
        idx[n] = i;
        n += logits[i] >= lo ? 1 : 0;
      }
    }
    // weights and the buckets of the distance to the largest: bucket b holds distances in
    // [b / 16, (b + 1) / 16) (in units of t), the last any further; ordered by distance, the
    // buckets follow the descending order of the logits
    long z = 0;
    long[] mass = new long[BUCKETS];
    int[] count = new int[BUCKETS];
    boolean inf = max == Float.POSITIVE_INFINITY, nucleus = topP < 1;
    for (int j = 0; j < n; j++) {
      long wj;
      int b;
      if (inf) {
        wj = 1;
        b = 0;
      } else {
        double d = ((double) logits[idx[j]] - max) / t; // as weight() has it
        wj = weightAt(d);
        double q = -d * BUCKETS_PER_UNIT;
        b = q >= BUCKETS - 1 ? BUCKETS - 1 : (int) q; // (unused without top-p)
      }
      w[j] = wj;
      z += wj;
      if (nucleus) {
        bucket[j] = (short) b;
        mass[b] += wj;
        count[b]++;
      }
    }
    if (!nucleus) return walk(w, idx, n, z, rng);
    long need = need(z, topP);
    long cum = 0;
    int last = 0;
    for (; last < BUCKETS - 1 && cum + mass[last] < need; last++) cum += mass[last];
    // the last bucket's tokens in descending order (keys hold j), until the weight reaches need
    long[] keys = new long[count[last]];
    int m = 0;
    for (int j = 0; j < n; j++) if (bucket[j] == last) keys[m++] = orderKey(logits[idx[j]], 0) | j;
    Arrays.sort(keys);
    // the nucleus: the buckets before the last and the last's tokens up to the cut, marked by a
    // bucket of -1; its weight is cum when it reaches need
    for (int q = 0; q < m && cum < need; q++) {
      int j = (int) keys[q];
      cum += w[j];
      bucket[j] = -1;
    }
    long u = rng.nextLong(cum);
    for (int j = 0; j < n; j++) {
      u -= bucket[j] < last ? w[j] : 0; // branch-free: about half of a flat distribution's
      if (u < 0) return idx[j]; // candidates are in the nucleus
    }
    throw new AssertionError("u below the nucleus' total weight");
  }

  /** The draw over the n candidates' weights w in vocabulary order. */
  private static int walk(long[] w, int[] idx, int n, long total, RandomGenerator rng) {
    long u = rng.nextLong(total);
    for (int j = 0; j < n; j++) {
      u -= w[j];
      if (u < 0) return idx[j];
    }
    throw new AssertionError("u below the nucleus' total weight");
  }

  /** ceil(p z) in [1, z]. */
  private static long need(long z, double p) {
    return Math.max(1, Math.min(z, (long) Math.ceil(p * (double) z)));
  }

  /**
   * The first k indices of x in descending order (equal values by ascending index, NaN as -inf),
   * found by one pass with a max-heap of the k smallest order keys, then sorted.
   */
  static int[] topOrder(float[] x, int k) {
    int n = x.length;
    k = Math.min(k, n);
    if (k <= 0) return new int[0];
    long[] heap = new long[k];
    for (int i = 0; i < n; i++) {
      long c = orderKey(x[i], i);
      if (i < k) {
        int at = i; // sift up
        while (at > 0) {
          int up = (at - 1) >> 1;
          if (heap[up] >= c) break;
          heap[at] = heap[up];
          at = up;
        }
        heap[at] = c;
      } else if (c < heap[0]) {
        int at = 0; // replace the largest, sift down
        while (true) {
          int l = 2 * at + 1;
          if (l >= k) break;
          int big = l + 1 < k && heap[l + 1] > heap[l] ? l + 1 : l;
          if (heap[big] <= c) break;
          heap[at] = heap[big];
          at = big;
        }
        heap[at] = c;
      }
    }
    Arrays.sort(heap);
    int[] idx = new int[k];
    for (int j = 0; j < k; j++) idx[j] = (int) heap[j];
    return idx;
  }

  /**
   * Index i of value x as one long whose ascending order is the descending order of the values (NaN
   * as -inf), equal values by ascending index: the value's bits made to sort descending as a signed
   * int in the high half, i in the low half.
   */
  static long orderKey(float x, int i) {
    int b = Float.floatToIntBits(x == x ? x : Float.NEGATIVE_INFINITY);
    int ascending = b ^ ((b >> 31) & 0x7fffffff);
    return ((long) ~ascending << 32) | (i & 0xffffffffL);
  }
}
