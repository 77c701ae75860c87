package dev.lora4j.train;

import java.util.LinkedHashMap;
import java.util.Locale;
import java.util.Map;

/**
 * Where the wall time of the optimizer steps goes: waiting for the data, the forward and backward
 * passes, the gradient norm (with the poisoned-batch guard), the optimizer step, the listeners
 * (progress, metrics; each listener's share is shown apart), the evaluations every evalSteps and
 * the checkpoints every saveSteps (averaged over all steps, like the others). The first step
 * (device warm-up, kernel selection) is left out of the means, so that the figures describe the
 * steady state.
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
  private final Map<String, Long> parts = new LinkedHashMap<>();
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

  /**
   * Charges nanos to a named part of a phase (each listener's share of "listeners"), shown after
   * the phases in {@link #summary()}; the phase itself is still charged by {@link #mark}.
   */
  public void part(String name, long nanos) {
    if (warm) parts.merge(name, nanos, Long::sum);
  }

  /** Mean milliseconds per step charged to part {@code name} (NaN before a steady step). */
  public double partMillis(String name) {
    return steps == 0 ? Double.NaN : parts.getOrDefault(name, 0L) / 1e6 / steps;
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
    StringBuilder of = new StringBuilder();
    for (String name : parts.keySet())
      of.append(of.length() == 0 ? "; listeners: " : ", ")
          .append(name)
          .append(String.format(Locale.ROOT, " %.2f", partMillis(name)));
    return String.format(
        Locale.ROOT,
        "time per optimizer step (mean of %d steps after the first): %.1f ms = data %.1f,"
            + " forward+backward %.1f, gradient norm %.1f, optimizer %.1f, listeners %.1f,"
            + " evaluation %.1f, checkpoints %.1f%s",
        steps,
        total,
        meanMillis(Phase.DATA),
        meanMillis(Phase.FORWARD_BACKWARD),
        meanMillis(Phase.GRAD_NORM),
        meanMillis(Phase.OPTIMIZER),
        meanMillis(Phase.LISTENERS),
        meanMillis(Phase.EVALUATION),
        meanMillis(Phase.CHECKPOINTS),
        of);
  }
}
