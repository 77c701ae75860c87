package dev.lora4j.model;

/**
 * Standard normal numbers from a seed, the same on every machine, JVM and thread: SplitMix64 for
 * the bits (written out here, not taken from the JDK, so that its definition cannot change), the
 * ziggurat method of Marsaglia and Tsang (2000, 256 layers) for the shape. The tables are computed
 * with {@link StrictMath}, and the rare paths (wedges and tail, about 1% of the numbers) call
 * {@link StrictMath#exp} and {@link StrictMath#log}; everything else is IEEE arithmetic, exact in
 * Java. About 3.5 ns a number, against 25 ns for Box-Muller with a {@code log}, {@code sqrt} and
 * {@code cos} per number (one core of a 2-core AMD EPYC VM).
 *
 * <p>The normal density {@code f(x) = exp(-x^2/2)} (unnormalized) over {@code x >= 0} is covered by
 * 256 layers of equal area {@code V}: layer 0 is the base strip {@code [0, X[0]] x [0, f(R)]} (the
 * part beyond {@code R} stands for the tail), layer {@code i >= 1} the rectangle {@code [0, X[i]] x
 * [f(X[i]), f(X[i+1])]}. A point uniform in a uniformly chosen layer is under the curve for sure
 * when {@code x < X[i+1]}; otherwise the wedge is tested with {@code f}, or for layer 0 the tail is
 * sampled directly (Marsaglia 1964). The sign comes from a separate bit.
 */
final class ZigguratNormal {
  private static final int LAYERS = 256;
  private static final double R = 3.6541528853610088;
  private static final double V = 4.92867323399e-3;

  /** Layer widths: X[0] = V / f(R), X[1] = R, ..., X[LAYERS] = 0. */
  private static final double[] X = new double[LAYERS + 1];

  /** F[i] = f(X[i]); F[LAYERS] = 1. */
  private static final double[] F = new double[LAYERS + 1];

  static {
    X[0] = V / f(R);
    X[1] = R;
    for (int i = 1; i < LAYERS - 1; i++) {
      X[i + 1] = StrictMath.sqrt(-2 * StrictMath.log(V / X[i] + f(X[i])));
    }
    X[LAYERS] = 0;
    for (int i = 0; i <= LAYERS; i++) F[i] = f(X[i]);
  }

  private static final long GOLDEN = 0x9E3779B97F4A7C15L;

  private long state;

  /**
   * @param seed the stream's seed: equal seeds give equal streams
   */
  ZigguratNormal(long seed) {
    this.state = seed;
  }

  private static double f(double x) {
    return StrictMath.exp(-0.5 * x * x);
  }

  /** SplitMix64's output function (Stafford's variant 13): a bijective 64-bit mixer. */
  static long mix64(long z) {
    z = (z ^ (z >>> 30)) * 0xBF58476D1CE4E5B9L;
    z = (z ^ (z >>> 27)) * 0x94D049BB133111EBL;
    return z ^ (z >>> 31);
  }

  /**
   * @return 64 uniform bits (SplitMix64)
   */
  long nextLong() {
    state += GOLDEN;
    return mix64(state);
  }

  /**
   * @return uniform in [0, 1), a multiple of 2^-53
   */
  double nextDouble() {
    return (nextLong() >>> 11) * 0x1.0p-53;
  }

  /**
   * @return a standard normal number
   */
  double nextGaussian() {
    while (true) {
      long b = nextLong();
      int i = (int) b & (LAYERS - 1);
      long sign = (b & LAYERS) << 55; // bit 8 to bit 63: applied without a branch, which would
      double x = (b >>> 11) * 0x1.0p-53 * X[i]; // be mispredicted half of the time
      if (x < X[i + 1]) return withSign(x, sign);
      if (i == 0) {
        // the tail beyond R: x = R + e1 / R with e1, e2 exponential, accepted when 2 e2 >= e1^2
        double e1;
        double e2;
        do {
          e1 = -StrictMath.log(1 - nextDouble()) / R;
          e2 = -StrictMath.log(1 - nextDouble());
        } while (e2 + e2 < e1 * e1);
        return withSign(R + e1, sign);
      }
      if (F[i] + nextDouble() * (F[i + 1] - F[i]) < f(x)) return withSign(x, sign);
    }
  }

  private static double withSign(double nonNegative, long signBit) {
    return Double.longBitsToDouble(Double.doubleToRawLongBits(nonNegative) ^ signBit);
  }
}
