package dev.lora4j;

import dev.lora4j.nativ.NativeEngine;

/**
 * AdamW as torch.optim.AdamW (decoupled weight decay, bias correction), with global-norm gradient
 * clipping before the update (maxGradNorm <= 0: none).
 */
public record AdamWConfig(
    double lr, double beta1, double beta2, double eps, double weightDecay, double maxGradNorm) {

  public AdamWConfig {
    if (!(lr >= 0) || Double.isInfinite(lr))
      throw new IllegalArgumentException("lr must be >= 0: " + lr);
    if (!(beta1 >= 0 && beta1 < 1))
      throw new IllegalArgumentException("beta1 must be in [0, 1): " + beta1);
    if (!(beta2 >= 0 && beta2 < 1))
      throw new IllegalArgumentException("beta2 must be in [0, 1): " + beta2);
    if (!(eps > 0) || Double.isInfinite(eps))
      throw new IllegalArgumentException("eps must be a finite number > 0: " + eps);
    if (!(weightDecay >= 0) || Double.isInfinite(weightDecay))
      throw new IllegalArgumentException(
          "weight decay must be a finite number >= 0: " + weightDecay);
    // 0 or less: no clipping; NaN would reach the core and fail at the first step
    if (Double.isNaN(maxGradNorm))
      throw new IllegalArgumentException("maxGradNorm must be a number (0 for none): NaN");
  }

  /** torch's defaults: lr 1e-3, betas (0.9, 0.999), eps 1e-8, weight decay 0.01; clip at 1.0. */
  public static AdamWConfig defaults() {
    return new AdamWConfig(1e-3, 0.9, 0.999, 1e-8, 0.01, 1.0);
  }

  public AdamWConfig withLr(double v) {
    return new AdamWConfig(v, beta1, beta2, eps, weightDecay, maxGradNorm);
  }

  public AdamWConfig withWeightDecay(double v) {
    return new AdamWConfig(lr, beta1, beta2, eps, v, maxGradNorm);
  }

  public AdamWConfig withMaxGradNorm(double v) {
    return new AdamWConfig(lr, beta1, beta2, eps, weightDecay, v);
  }

  public AdamWConfig withBetas(double b1, double b2) {
    return new AdamWConfig(lr, b1, b2, eps, weightDecay, maxGradNorm);
  }

  public AdamWConfig withEps(double v) {
    return new AdamWConfig(lr, beta1, beta2, v, weightDecay, maxGradNorm);
  }

  NativeEngine.AdamW toNative() {
    return new NativeEngine.AdamW(
        (float) lr,
        (float) beta1,
        (float) beta2,
        (float) eps,
        (float) weightDecay,
        (float) maxGradNorm);
  }
}
