package dev.lora4j;

import java.nio.FloatBuffer;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Locale;
import java.util.Set;
import java.util.SplittableRandom;

/**
 * Faulty workers on purpose, for testing robust aggregation: {@code KIND[:ARG]@WORKER[,...]} on the
 * command line ({@code --inject-fault}), {@link TrainingConfig.Builder#injectFaults} in Java.
 * Workers are numbered within each optimizer step, 0 .. n-1 (see {@link Aggregation}); a fault acts
 * on that worker in every step.
 *
 * <ul>
 *   <li>{@code gradient-scale:S}: the worker's gradient times S (S may be negative).
 *   <li>{@code gradient-noise:SIGMA}: Gaussian noise of standard deviation SIGMA added to every
 *       coordinate of the worker's gradient.
 *   <li>{@code nan}: every coordinate of the worker's gradient NaN.
 *   <li>{@code random-tokens}: the worker's batch replaced by uniformly random token ids (at the
 *       same real positions; the counted labels follow the new ids).
 *   <li>{@code alie:Z}: "a little is enough" (Baruch et al., 2019): the worker sends mean - Z x std
 *       of the honest workers' gradients, per coordinate (honest: workers with no fault).
 * </ul>
 *
 * Random draws are seeded by the run's seed, the step and the worker, so a run with faults is
 * reproducible and every rank injects the same ones.
 */
public record FaultInjection(List<Fault> faults) {
  /** The kinds of fault. */
  public enum Kind {
    GRADIENT_SCALE("gradient-scale", true),
    GRADIENT_NOISE("gradient-noise", true),
    NAN("nan", false),
    RANDOM_TOKENS("random-tokens", false),
    ALIE("alie", true);

    private final String label;
    private final boolean takesArg;

    Kind(String label, boolean takesArg) {
      this.label = label;
      this.takesArg = takesArg;
    }

    public String label() {
      return label;
    }
  }

  /** One faulty worker. arg: S, SIGMA or Z (0 for nan and random-tokens). */
  public record Fault(Kind kind, double arg, int worker) {
    public Fault {
      if (kind == null) throw new IllegalArgumentException("fault kind is null");
      if (worker < 0)
        throw new IllegalArgumentException("injectFaults: worker must be >= 0, got " + worker);
      if (!Double.isFinite(arg))
        throw new IllegalArgumentException(
            "injectFaults: " + kind.label + " needs a finite argument");
      if (kind == Kind.GRADIENT_NOISE && !(arg > 0)) {
        throw new IllegalArgumentException(
            "injectFaults: gradient-noise:SIGMA needs SIGMA > 0, got " + arg);
      }
    }

    @Override
    public String toString() {
      return kind.label + (kind.takesArg ? ":" + fmt(arg) : "") + "@" + worker;
    }
  }

  public FaultInjection {
    faults = List.copyOf(faults);
    Set<Integer> seen = new HashSet<>();
    for (Fault f : faults) {
      if (!seen.add(f.worker())) {
        throw new IllegalArgumentException("injectFaults names worker " + f.worker() + " twice");
      }
    }
  }

  public static FaultInjection none() {
    return new FaultInjection(List.of());
  }

  public boolean isEmpty() {
    return faults.isEmpty();
  }

  /** Parses {@code KIND[:ARG]@WORKER[,...]}; null or blank: none. */
  public static FaultInjection parse(String text) {
    if (text == null || text.isBlank()) return none();
    List<Fault> out = new ArrayList<>();
    for (String part : text.split(",")) {
      String p = part.trim().toLowerCase(Locale.ROOT);
      int at = p.lastIndexOf('@');
      if (at < 0) {
        throw new IllegalArgumentException(
            "injectFaults '"
                + part.trim()
                + "': expected KIND[:ARG]@WORKER (e.g. gradient-scale:-10@2)");
      }
      int worker;
      try {
        worker = Integer.parseInt(p.substring(at + 1).trim());
      } catch (NumberFormatException e) {
        throw new IllegalArgumentException(
            "injectFaults '" + part.trim() + "': WORKER must be a whole number");
      }
      String spec = p.substring(0, at).trim();
      String name = spec;
      String arg = null;
      int colon = spec.indexOf(':');
      if (colon >= 0) {
        name = spec.substring(0, colon).trim();
        arg = spec.substring(colon + 1).trim();
      }
      Kind kind = null;
      for (Kind k : Kind.values()) if (k.label.equals(name)) kind = k;
      if (kind == null) {
        throw new IllegalArgumentException(
            "injectFaults '"
                + part.trim()
                + "': unknown kind '"
                + name
                + "' (gradient-scale:S, gradient-noise:SIGMA, nan, random-tokens, alie:Z)");
      }
      if (kind.takesArg != (arg != null)) {
        throw new IllegalArgumentException(
            "injectFaults '"
                + part.trim()
                + "': "
                + kind.label
                + (kind.takesArg
                    ? " needs an argument (" + kind.label + ":X)"
                    : " takes no argument"));
      }
      double v = 0;
      if (arg != null) {
        try {
          v = Double.parseDouble(arg);
        } catch (NumberFormatException e) {
          throw new IllegalArgumentException(
              "injectFaults '" + part.trim() + "': '" + arg + "' is not a number");
        }
      }
      out.add(new Fault(kind, v, worker));
    }
    return new FaultInjection(out);
  }

  /** Refuses a fault on a worker the run does not have. */
  public void check(int n, String workersFrom) {
    for (Fault f : faults) {
      if (f.worker() >= n) {
        throw new IllegalArgumentException(
            "injectFaults names worker "
                + f.worker()
                + ", but the run has n = "
                + n
                + " workers ("
                + workersFrom
                + "), numbered 0 .. "
                + (n - 1));
      }
    }
    if (faults.stream().anyMatch(f -> f.kind() == Kind.ALIE) && honest(n).isEmpty()) {
      throw new IllegalArgumentException(
          "injectFaults: alie needs at least one worker without a fault");
    }
  }

  /** The fault of a worker, or null. */
  public Fault of(int worker) {
    for (Fault f : faults) if (f.worker() == worker) return f;
    return null;
  }

  private List<Integer> honest(int n) {
    List<Integer> h = new ArrayList<>();
    for (int w = 0; w < n; w++) if (of(w) == null) h.add(w);
    return h;
  }

  /** Whether a fault changes gradients (all but random-tokens, which changes the batch). */
  public boolean corruptsGradients() {
    return faults.stream().anyMatch(f -> f.kind() != Kind.RANDOM_TOKENS);
  }

  /** The batch worker w trains on: random ids at the real positions for random-tokens. */
  public Batch batch(Batch b, int worker, long step, long seed, int vocabSize) {
    Fault f = of(worker);
    if (f == null || f.kind() != Kind.RANDOM_TOKENS) return b;
    SplittableRandom rng = rng(seed, step, worker);
    int[] ids = b.inputIds().clone();
    int[] labels = b.labels() == null ? null : b.labels().clone();
    for (int i = 0; i < ids.length; i++) {
      if (b.attentionMask() != null && b.attentionMask()[i] == 0) continue;
      ids[i] = rng.nextInt(vocabSize);
      if (labels != null && labels[i] != -100) labels[i] = ids[i];
    }
    return new Batch(
        b.rows(), b.seq(), ids, b.attentionMask(), labels, b.positionIds(), b.segmentIds());
  }

  /**
   * Corrupts the gradients of the faulty workers among n rows of numel values (workers from index 0
   * of the buffer): scale, noise and NaN first, then the ALIE rows from the honest ones.
   */
  public void corrupt(FloatBuffer workers, int n, long numel, long step, long seed) {
    int m = Math.toIntExact(numel);
    for (Fault f : faults) {
      if (f.worker() >= n) continue;
      int base = f.worker() * m;
      switch (f.kind()) {
        case GRADIENT_SCALE -> {
          float s = (float) f.arg();
          for (int j = 0; j < m; j++) workers.put(base + j, workers.get(base + j) * s);
        }
        case GRADIENT_NOISE -> {
          SplittableRandom rng = rng(seed, step, f.worker());
          for (int j = 0; j < m; j++) {
            workers.put(base + j, (float) (workers.get(base + j) + f.arg() * rng.nextGaussian()));
          }
        }
        case NAN -> {
          for (int j = 0; j < m; j++) workers.put(base + j, Float.NaN);
        }
        default -> {}
      }
    }
    List<Fault> alie =
        faults.stream().filter(f -> f.kind() == Kind.ALIE && f.worker() < n).toList();
    if (alie.isEmpty()) return;
    List<Integer> honest = honest(n);
    if (honest.isEmpty()) throw new IllegalStateException("alie needs at least one honest worker");
    float[] target = new float[alie.size()];
    for (int j = 0; j < m; j++) {
      double s = 0, ss = 0;
      for (int w : honest) s += workers.get(w * m + j);
      double mean = s / honest.size();
      for (int w : honest) {
        double d = workers.get(w * m + j) - mean;
        ss += d * d;
      }
      double std = Math.sqrt(ss / honest.size());
      for (int k = 0; k < target.length; k++) target[k] = (float) (mean - alie.get(k).arg() * std);
      for (int k = 0; k < target.length; k++) workers.put(alie.get(k).worker() * m + j, target[k]);
    }
  }

  private static SplittableRandom rng(long seed, long step, int worker) {
    return new SplittableRandom(
        seed * 0x9E3779B97F4A7C15L ^ (step * 1_000_003L + worker) * 0xC2B2AE3D27D4EB4FL);
  }

  static String fmt(double v) {
    return v == Math.rint(v) && Math.abs(v) < 1e15 ? Long.toString((long) v) : Double.toString(v);
  }

  @Override
  public String toString() {
    return String.join(",", faults.stream().map(Fault::toString).toList());
  }
}
