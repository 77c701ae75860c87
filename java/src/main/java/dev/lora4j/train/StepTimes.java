package dev.lora4j.train;

import java.util.Locale;

/**
 * Where the wall time of the optimizer steps goes: waiting for the data, the forward and backward
 * passes, the gradient norm (with the poisoned-batch guard), the optimizer step, the listeners
 * (progress, metrics), the evaluations every evalSteps and the checkpoints every saveSteps
 * (averaged over all steps, like the others). The first step (device warm-up, kernel selection) is
 * left out of the means, so that the figures describe the steady state.
 */
public final class StepTimes {
  /** The phases of one optimizer step. */
  public enum Phase {
    DATA,
    FORWARD_BACKWARD,
    GRAD_NORM,
    OPTIMIZER,
    LISTENERS,
    EVALUATION,
    CHECKPOINTS
  }

  private final long[] nanos = new long[Phase.values().length];
  private long steps;
  private long last = System.nanoTime();
  private boolean warm;

  /** Starts timing a step at the current time. */
  public void begin() {
    last = System.nanoTime();
  }

  /** Charges the time since the previous mark to {@code phase}. */
  public void mark(Phase phase) {
    long now = System.nanoTime();
    if (warm) nanos[phase.ordinal()] += now - last;
    last = now;
  }

  /** Ends a step; the first one only warms up. */
  public void end() {
    if (warm) steps++;
    warm = true;
  }

  /** Steps counted in the means (all but the first). */
  public long steps() {
    return steps;
  }

  /** Mean milliseconds per step spent in {@code phase}. */
  public double meanMillis(Phase phase) {
    return steps == 0 ? Double.NaN : nanos[phase.ordinal()] / 1e6 / steps;
  }

  /** "data 1.2 ms, forward+backward 590.1 ms, ..." over the steady steps. */
  public String summary() {
    double total = 0;
    for (Phase p : Phase.values()) total += meanMillis(p);
    return String.format(
        Locale.ROOT,
        "time per optimizer step (mean of %d steps after the first): %.1f ms = data %.1f,"
            + " forward+backward %.1f, gradient norm %.1f, optimizer %.1f, listeners %.1f,"
            + " evaluation %.1f, checkpoints %.1f",
        steps,
        total,
        meanMillis(Phase.DATA),
        meanMillis(Phase.FORWARD_BACKWARD),
        meanMillis(Phase.GRAD_NORM),
        meanMillis(Phase.OPTIMIZER),
        meanMillis(Phase.LISTENERS),
        meanMillis(Phase.EVALUATION),
        meanMillis(Phase.CHECKPOINTS));
  }
}
