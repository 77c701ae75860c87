package dev.lora4j;

import dev.lora4j.nativ.Lora4jLibrary;
import dev.lora4j.nativ.NativeEngine;
import java.nio.FloatBuffer;
import java.util.Locale;

/**
 * How the gradients of an optimizer step's virtual workers become the one gradient applied. Every
 * (rank, micro-batch) pair of a step is one worker: one process with gradient accumulation k has k
 * workers, R ranks with accumulation k have R x k. Each worker's gradient is the gradient of its
 * own micro-batch's mean loss; the rule combines them, identically on every rank, before clipping,
 * the poisoned-batch guard and AdamW see the result.
 *
 * <ul>
 *   <li>{@code mean} (default): the label-token weighted mean, the same gradient as one big batch;
 *       tolerates no faulty worker.
 *   <li>{@code median}: coordinate-wise median; tolerates f &lt; n/2 faulty workers, needs n &ge;
 *       3.
 *   <li>{@code trimmed-mean:f} (f default 1): per coordinate, the mean after dropping the f largest
 *       and f smallest values; needs 2f &lt; n.
 *   <li>{@code krum:f} (f default 1): the gradient of the worker closest to its n - f - 2 nearest
 *       others (Blanchard et al., 2017); needs n &gt; 2f + 2.
 *   <li>{@code centered-clip}: from the coordinate-wise median, three rounds of averaging the
 *       workers' differences clipped to the median distance (Karimireddy et al., 2021); tolerates f
 *       &lt; n/2, needs n &ge; 3.
 * </ul>
 *
 * <p>Median, trimmed mean and centered clipping mix first by default (nearest-neighbour mixing,
 * Allouah et al., 2023): each worker's gradient is replaced by the mean of its own and its nearest
 * others', n - f in all, f the faulty workers the rule tolerates (trimmed-mean:f: f; median and
 * centered-clip: (n - 1) / 2), and the rule runs on the mixtures. A faulty worker far from the
 * honest ones enters no honest mixture and the honest mixtures lie close together, so the bias one
 * faulty worker leaves in the rule shrinks with the honest spread; the tolerance is the rule's.
 * {@code median:no-mixing} (Java: {@link #withoutMixing()}) applies the rule to the workers' own
 * gradients. Krum selects one worker's own gradient and does not mix.
 *
 * <p>The rules run in the native core ({@code lora4j_aggregate}) and are deterministic: the same
 * bits on every rank, machine and thread count.
 *
 * @param rule the rule
 * @param f the faulty workers tolerated (trimmed-mean and krum; 0 for the others)
 * @param mixing nearest-neighbour mixing before the rule (median, trimmed-mean, centered-clip)
 */
public record Aggregation(Rule rule, int f, boolean mixing) {
  /** The rules, by their command-line names. */
  public enum Rule {
    MEAN("mean", Lora4jLibrary.LORA4J_AGG_MEAN),
    MEDIAN("median", Lora4jLibrary.LORA4J_AGG_MEDIAN),
    TRIMMED_MEAN("trimmed-mean", Lora4jLibrary.LORA4J_AGG_TRIMMED_MEAN),
    KRUM("krum", Lora4jLibrary.LORA4J_AGG_KRUM),
    CENTERED_CLIP("centered-clip", Lora4jLibrary.LORA4J_AGG_CENTERED_CLIP);

    private final String label;
    private final int code;

    Rule(String label, int code) {
      this.label = label;
      this.code = code;
    }

    public String label() {
      return label;
    }

    int code() {
      return code;
    }

    boolean takesF() {
      return this == TRIMMED_MEAN || this == KRUM;
    }

    /**
     * Whether the rule can mix first (and does by default): median, trimmed mean, centered clip.
     */
    public boolean mixes() {
      return this == MEDIAN || this == TRIMMED_MEAN || this == CENTERED_CLIP;
    }
  }

  /** The rule with its default: mixing first where the rule mixes. */
  public Aggregation(Rule rule, int f) {
    this(rule, f, rule != null && rule.mixes());
  }

  public Aggregation {
    if (rule == null) throw new IllegalArgumentException("aggregation rule is null");
    if (mixing && !rule.mixes()) {
      throw new IllegalArgumentException(
          "aggregation "
              + rule.label
              + " does not mix (nearest-neighbour mixing goes with median, trimmed-mean and"
              + " centered-clip)");
    }
    if (!rule.takesF() && f != 0) {
      throw new IllegalArgumentException(
          "aggregation " + rule.label + " takes no f (got " + f + ")");
    }
    if (f < 0)
      throw new IllegalArgumentException("aggregation " + rule.label + ":f needs f >= 0, got " + f);
  }

  public static Aggregation mean() {
    return new Aggregation(Rule.MEAN, 0);
  }

  public static Aggregation median() {
    return new Aggregation(Rule.MEDIAN, 0);
  }

  public static Aggregation trimmedMean(int f) {
    return new Aggregation(Rule.TRIMMED_MEAN, f);
  }

  public static Aggregation krum(int f) {
    return new Aggregation(Rule.KRUM, f);
  }

  public static Aggregation centeredClip() {
    return new Aggregation(Rule.CENTERED_CLIP, 0);
  }

  /** The same rule applied to the workers' own gradients, without mixing first. */
  public Aggregation withoutMixing() {
    return new Aggregation(rule, f, false);
  }

  /**
   * {@code mean}, {@code median}, {@code trimmed-mean[:f]}, {@code krum[:f]} or {@code
   * centered-clip} (f defaults to 1); median, trimmed-mean and centered-clip may end in {@code
   * :no-mixing} ({@code trimmed-mean:2:no-mixing}).
   */
  public static Aggregation parse(String text) {
    String s = text.trim().toLowerCase(Locale.ROOT);
    boolean noMixing = false;
    if (s.endsWith(":no-mixing")) {
      noMixing = true;
      s = s.substring(0, s.length() - ":no-mixing".length());
    }
    String name = s;
    Integer f = null;
    int colon = s.indexOf(':');
    if (colon >= 0) {
      name = s.substring(0, colon);
      try {
        f = Integer.parseInt(s.substring(colon + 1).trim());
      } catch (NumberFormatException e) {
        throw new IllegalArgumentException(
            "aggregation '"
                + text
                + "': after ':' comes f (a whole number below 2^31) or no-mixing, e.g."
                + " trimmed-mean:2"
                + " or median:no-mixing");
      }
    }
    for (Rule r : Rule.values()) {
      if (r.label.equals(name)) {
        if (f != null && !r.takesF()) {
          throw new IllegalArgumentException(
              "aggregation '"
                  + text
                  + "': "
                  + r.label
                  + " takes no f (only trimmed-mean:f and krum:f do)");
        }
        if (noMixing && !r.mixes()) {
          throw new IllegalArgumentException(
              "aggregation '"
                  + text
                  + "': "
                  + r.label
                  + " does not mix, so it takes no :no-mixing (only median, trimmed-mean and"
                  + " centered-clip do)");
        }
        return new Aggregation(r, f != null ? f : (r.takesF() ? 1 : 0), r.mixes() && !noMixing);
      }
    }
    throw new IllegalArgumentException(
        "unknown aggregation '"
            + text
            + "': use mean, median, trimmed-mean[:f], krum[:f] or centered-clip (the robust"
            + " ones but krum optionally ending in :no-mixing)");
  }

  /** The rule's code for the native core, with LORA4J_AGG_MIX when it mixes. */
  int code() {
    return rule.code() | (mixing ? Lora4jLibrary.LORA4J_AGG_MIX : 0);
  }

  /** Whether the rule needs each worker's gradient separately (every rule but the mean). */
  public boolean robust() {
    return rule != Rule.MEAN;
  }

  /** The faulty workers the rule tolerates among n. */
  public int tolerated(int n) {
    return switch (rule) {
      case MEAN -> 0;
      case MEDIAN, CENTERED_CLIP -> Math.max(0, (n - 1) / 2);
      case TRIMMED_MEAN, KRUM -> f;
    };
  }

  /**
   * Refuses n workers outside the rule's tolerance with a message naming the setting, the rule and
   * where n comes from (e.g. "1 rank x gradientAccumulation 4").
   */
  public void check(int n, String workersFrom) {
    String why = null;
    switch (rule) {
      case MEAN -> {}
      case MEDIAN, CENTERED_CLIP -> {
        if (n < 3) why = "tolerates f < n/2 faulty workers and needs n >= 3 to tolerate one";
      }
      case TRIMMED_MEAN -> {
        if (2L * f >= n) why = "drops f values at each end and needs 2f < n";
      }
      case KRUM -> {
        if (n <= 2L * f + 2) why = "needs n > 2f + 2 workers";
      }
    }
    if (why != null) {
      throw new IllegalArgumentException(
          "aggregation "
              + this
              + " "
              + why
              + ", but the run has n = "
              + n
              + " workers ("
              + workersFrom
              + "); raise gradientAccumulation or the number of ranks, or choose another rule");
    }
  }

  /**
   * Applies the rule to n workers' gradients: rows of {@code numel} values one after another in
   * {@code workers} (a direct buffer, from index 0); out (direct, numel values) receives the
   * result. weights: the workers' label tokens (used by the mean; null for equal weights). Returns
   * the worker Krum selected, else -1.
   */
  public int apply(int n, long numel, FloatBuffer workers, float[] weights, FloatBuffer out) {
    return NativeEngine.aggregate(code(), f, n, numel, workers, weights, out);
  }

  int applyToWorkerRows(NativeEngine engine, int n, float[] weights) {
    return engine.workersAggregate(code(), f, n, rule == Rule.MEAN ? weights : null);
  }

  @Override
  public String toString() {
    String s = rule.takesF() ? rule.label + ":" + f : rule.label;
    return rule.mixes() && !mixing ? s + ":no-mixing" : s;
  }
}
