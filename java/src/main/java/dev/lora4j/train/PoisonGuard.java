package dev.lora4j.train;

import dev.lora4j.GuardConfig;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * Decides whether a step may be applied: not when its loss or gradient norm is not finite, and,
 * with the guard on, not when either exceeds the configured factor times the running median of the
 * recent applied steps. Its history is part of the trainer state so that a resumed run decides
 * exactly as the uninterrupted one.
 */
public final class PoisonGuard {
  private final GuardConfig cfg;
  private final List<double[]> history; // {loss, gradNorm} of recent applied steps
  private int consecutive; // rejections in a row by the median test

  public PoisonGuard(GuardConfig cfg, List<double[]> history, int consecutiveRejections) {
    this.cfg = cfg;
    this.history = new ArrayList<>(history);
    this.consecutive = consecutiveRejections;
  }

  /** Null when the step may be applied, else the reason it may not. */
  public String check(double loss, double gradNorm) {
    if (!Double.isFinite(loss)) return "loss not finite";
    if (!Double.isFinite(gradNorm)) return "gradient not finite";
    if (!cfg.enabled() || history.size() < cfg.minHistory()) return null;
    String why = outlier(loss, gradNorm);
    if (why == null || consecutive >= cfg.maxConsecutive()) return null;
    consecutive++;
    return why;
  }

  private String outlier(double loss, double gradNorm) {
    double ml = median(0), mg = median(1);
    if (loss > cfg.lossFactor() * ml) {
      return String.format(
          java.util.Locale.ROOT,
          "loss %.4g above %.3g x running median %.4g",
          loss,
          cfg.lossFactor(),
          ml);
    }
    if (gradNorm > cfg.gradNormFactor() * mg) {
      return String.format(
          java.util.Locale.ROOT,
          "gradient norm %.4g above %.3g x running median %.4g",
          gradNorm,
          cfg.gradNormFactor(),
          mg);
    }
    return null;
  }

  /** Records an applied step. */
  public void accept(double loss, double gradNorm) {
    consecutive = 0;
    history.add(new double[] {loss, gradNorm});
    while (history.size() > cfg.window()) history.remove(0);
  }

  /** Rejections in a row so far (part of the trainer state). */
  public int consecutiveRejections() {
    return consecutive;
  }

  public List<double[]> history() {
    List<double[]> copy = new ArrayList<>();
    for (double[] h : history) copy.add(h.clone());
    return copy;
  }

  private double median(int k) {
    double[] v = new double[history.size()];
    for (int i = 0; i < v.length; i++) v[i] = history.get(i)[k];
    Arrays.sort(v);
    int n = v.length;
    return n % 2 == 1 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
  }
}
