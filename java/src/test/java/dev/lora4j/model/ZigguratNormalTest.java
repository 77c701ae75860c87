package dev.lora4j.model;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;

class ZigguratNormalTest {
  static final int N = 1 << 22;

  /** The standard normal density. */
  static double pdf(double x) {
    return Math.exp(-0.5 * x * x) / Math.sqrt(2 * Math.PI);
  }

  /** P(a < X < b) for a standard normal X, by Simpson's rule (error far below 1e-12 here). */
  static double mass(double a, double b) {
    int m = 200;
    double h = (b - a) / m;
    double s = pdf(a) + pdf(b);
    for (int k = 1; k < m; k++) s += (k % 2 == 1 ? 4 : 2) * pdf(a + k * h);
    return s * h / 3;
  }

  @Test
  void histogramMatchesTheNormalDistribution() {
    // 0.1-wide bins over [-4.5, 4.5] plus the two tails: the ziggurat's layers, wedges and its
    // tail beyond R = 3.654 each show up in different bins, so a wrong table or test shows here.
    double lo = -4.5;
    double width = 0.1;
    int bins = 90;
    long[] count = new long[bins + 2];
    ZigguratNormal r = new ZigguratNormal(42);
    double sum = 0;
    double sum2 = 0;
    double sum4 = 0;
    for (int i = 0; i < N; i++) {
      double x = r.nextGaussian();
      sum += x;
      sum2 += x * x;
      sum4 += x * x * x * x;
      count[x < lo ? 0 : x >= -lo ? bins + 1 : Math.min(bins, 1 + (int) ((x - lo) / width))]++;
    }
    double chi2 = 0;
    for (int b = 0; b < bins + 2; b++) {
      double p =
          b == 0 || b == bins + 1 ? mass(-12, lo) : mass(lo + (b - 1) * width, lo + b * width);
      double expected = p * N;
      chi2 += (count[b] - expected) * (count[b] - expected) / expected;
    }
    // 91 degrees of freedom: mean 91, standard deviation 13.5; 160 is beyond p = 1e-5
    assertTrue(chi2 < 160, "chi-square " + chi2);
    double mean = sum / N;
    double var = sum2 / N - mean * mean;
    assertEquals(0, mean, 5 / Math.sqrt(N), "mean");
    assertEquals(1, var, 5 * Math.sqrt(2.0 / N), "variance");
    assertEquals(3, sum4 / N / (var * var), 5 * Math.sqrt(96.0 / N), "kurtosis");
  }

  @Test
  void tailBeyondTheBaseLayerHasTheNormalMass() {
    // |x| > 3.654 comes only from the tail sampler: P = 2.58e-4, about 1080 of 2^22
    ZigguratNormal r = new ZigguratNormal(7);
    long tail = 0;
    long far = 0;
    for (int i = 0; i < N; i++) {
      double x = Math.abs(r.nextGaussian());
      if (x > 3.6541528853610088) tail++;
      if (x > 4.2) far++;
    }
    double pTail = 2 * mass(3.6541528853610088, 12);
    double pFar = 2 * mass(4.2, 12);
    assertEquals(pTail * N, tail, 5 * Math.sqrt(pTail * N), "tail count");
    assertEquals(pFar * N, far, 5 * Math.sqrt(pFar * N) + 1, "count beyond 4.2");
  }

  @Test
  void streamIsAFunctionOfTheSeed() {
    ZigguratNormal a = new ZigguratNormal(3);
    ZigguratNormal b = new ZigguratNormal(3);
    ZigguratNormal c = new ZigguratNormal(4);
    boolean differs = false;
    for (int i = 0; i < 1000; i++) {
      double x = a.nextGaussian();
      assertEquals(Double.doubleToRawLongBits(x), Double.doubleToRawLongBits(b.nextGaussian()));
      differs |= x != c.nextGaussian();
    }
    assertTrue(differs);
    // SplitMix64 from seed 0: the published first output (Vigna's splitmix64.c)
    assertEquals(0xE220A8397B1DCDAFL, new ZigguratNormal(0).nextLong());
    assertNotEquals(new ZigguratNormal(0).nextGaussian(), new ZigguratNormal(1).nextGaussian());
  }
}
