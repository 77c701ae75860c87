package dev.lora4j;

/**
 * The poisoned-batch guard: a step whose loss or gradient norm is not finite, or whose loss exceeds
 * {@code lossFactor} times, or gradient norm {@code gradNormFactor} times, the running median of
 * the last {@code window} applied steps, is not applied. Such a step is counted and reported with
 * the data position of its batches. The median test starts once {@code minHistory} steps have been
 * applied.
 *
 * @param enabled the guard is on (default); off, only non-finite gradients are skipped (always)
 * @param lossFactor how far above the running median of the loss a step is rejected
 * @param gradNormFactor how far above the running median of the gradient norm a step is rejected
 * @param window how many recent applied steps the median is taken over
 * @param minHistory applied steps needed before the median test is used
 * @param maxConsecutive rejections in a row after which the next finite step is applied
 */
public record GuardConfig(
    boolean enabled,
    double lossFactor,
    double gradNormFactor,
    int window,
    int minHistory,
    int maxConsecutive) {
  public GuardConfig {
    if (!(lossFactor > 1))
      throw new IllegalArgumentException("guard loss factor must be > 1: " + lossFactor);
    if (!(gradNormFactor > 1)) {
      throw new IllegalArgumentException(
          "guard gradient-norm factor must be > 1: " + gradNormFactor);
    }
    if (window < 1) throw new IllegalArgumentException("guard window must be >= 1: " + window);
    if (minHistory < 1) throw new IllegalArgumentException("guard minHistory must be >= 1");
    if (maxConsecutive < 1) throw new IllegalArgumentException("guard maxConsecutive must be >= 1");
  }

  /**
   * On: loss above 3x or gradient norm above 10x the median of the last 32 applied steps, once 8
   * steps are applied; the fourth outlier in a row is applied.
   */
  public static GuardConfig defaults() {
    return new GuardConfig(true, 3.0, 10.0, 32, 8, 3);
  }

  public static GuardConfig off() {
    return new GuardConfig(false, 3.0, 10.0, 32, 8, 3);
  }

  public GuardConfig withLossFactor(double f) {
    return new GuardConfig(enabled, f, gradNormFactor, window, minHistory, maxConsecutive);
  }

  public GuardConfig withGradNormFactor(double f) {
    return new GuardConfig(enabled, lossFactor, f, window, minHistory, maxConsecutive);
  }
}
