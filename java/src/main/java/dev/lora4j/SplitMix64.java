package dev.lora4j;

import java.util.random.RandomGenerator;

/**
 * The generator sampling draws from: SplitMix64 with the golden gamma, the sequence {@code new
 * java.util.SplittableRandom(seed)} gives (tested), with its 64-bit state readable and settable so
 * that the native core can continue the same sequence ({@code lora4j_decode_sample}, which advances
 * the state it is given exactly as this class does). {@link #nextLong(long)} is spelled out here
 * (the JDK's bounded draw: one output, masked for a power of two, else halved and reduced, another
 * drawn while the reduction would favour the low values) so that the core's copy has one source.
 */
public final class SplitMix64 implements RandomGenerator {
  private static final long GAMMA = 0x9e3779b97f4a7c15L;
  private long state;

  /** The sequence of {@code new SplittableRandom(seed)}. */
  public SplitMix64(long seed) {
    this.state = seed;
  }

  /** The state: the seed plus the gamma times the outputs drawn. */
  public long state() {
    return state;
  }

  /** Continues from a state (one a native draw returned). */
  public void setState(long s) {
    state = s;
  }

  @Override
  public long nextLong() {
    long z = state += GAMMA;
    z = (z ^ (z >>> 30)) * 0xbf58476d1ce4e5b9L;
    z = (z ^ (z >>> 27)) * 0x94d049bb133111ebL;
    return z ^ (z >>> 31);
  }

  @Override
  public long nextLong(long bound) {
    if (bound <= 0) throw new IllegalArgumentException("bound must be positive");
    long m = bound - 1, r = nextLong();
    if ((bound & m) == 0L) return r & m;
    for (long u = r >>> 1; u + m - (r = u % bound) < 0L; u = nextLong() >>> 1)
      ;
    return r;
  }
}
