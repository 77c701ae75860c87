package dev.lora4j;

/**
 * The poisoned-batch guard: a step whose loss or gradient norm is not finite, or whose loss or
 * gradient norm exceeds {@code factor} times the running median of the last {@code window}
 * applied steps, is not applied. Such a step is counted and reported with the data position of
 * its batches. The median test starts once {@code minHistory} steps have been applied.
 *
 * @param enabled the guard is on (default); off, only non-finite gradients are skipped (always)
 * @param factor how far above the running median a step is rejected
 * @param window how many recent applied steps the median is taken over
 * @param minHistory applied steps needed before the median test is used
 */
public record GuardConfig(boolean enabled, double factor, int window, int minHistory) {
  public GuardConfig {
    if (!(factor > 1)) throw new IllegalArgumentException("guard factor must be > 1: " + factor);
    if (window < 1) throw new IllegalArgumentException("guard window must be >= 1: " + window);
    if (minHistory < 1) throw new IllegalArgumentException("guard minHistory must be >= 1");
  }

  /** On, factor 5 over the median of the last 32 steps, after 8 steps. */
  public static GuardConfig defaults() {
    return new GuardConfig(true, 5.0, 32, 8);
  }

  public static GuardConfig off() {
    return new GuardConfig(false, 5.0, 32, 8);
  }

  public GuardConfig withFactor(double f) {
    return new GuardConfig(enabled, f, window, minHistory);
  }
}
