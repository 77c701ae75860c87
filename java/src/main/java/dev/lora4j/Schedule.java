package dev.lora4j;

/**
 * Learning-rate schedule, as Hugging Face's {@code get_*_schedule_with_warmup}: the optimizer step
 * with 0-based index s uses {@code lr * factor(s)}. Warmup rises linearly from 0 over the warmup
 * steps (step 0 of a warmup has factor 0, as in Hugging Face).
 */
public final class Schedule {
  /** The shape after warmup. */
  public enum Kind {
    CONSTANT,
    LINEAR,
    COSINE
  }

  private final Kind kind;
  private final int warmupSteps;
  private final double warmupRatio;

  private Schedule(Kind kind, int warmupSteps, double warmupRatio) {
    if (warmupSteps < 0) throw new IllegalArgumentException("warmup steps must be >= 0");
    if (!(warmupRatio >= 0 && warmupRatio < 1)) {
      throw new IllegalArgumentException("warmup ratio must be in [0, 1)");
    }
    this.kind = kind;
    this.warmupSteps = warmupSteps;
    this.warmupRatio = warmupRatio;
  }

  /** Constant learning rate (after warmup). */
  public static Schedule constant() {
    return new Schedule(Kind.CONSTANT, 0, 0);
  }

  /** Linear decay to 0 at the last step (Hugging Face's default). */
  public static Schedule linear() {
    return new Schedule(Kind.LINEAR, 0, 0);
  }

  /** Half-cosine decay to 0 at the last step. */
  public static Schedule cosine() {
    return new Schedule(Kind.COSINE, 0, 0);
  }

  /** Parses "constant", "linear" or "cosine". */
  public static Schedule parse(String s) {
    return switch (s.trim().toLowerCase(java.util.Locale.ROOT)) {
      case "constant" -> constant();
      case "linear" -> linear();
      case "cosine" -> cosine();
      default ->
          throw new IllegalArgumentException(
              "unknown schedule '" + s + "': use constant, linear or cosine");
    };
  }

  public Schedule warmupSteps(int n) {
    return new Schedule(kind, n, 0);
  }

  /** Warmup over this fraction of the total steps (used when warmupSteps is 0). */
  public Schedule warmupRatio(double r) {
    return new Schedule(kind, 0, r);
  }

  public Kind kind() {
    return kind;
  }

  /** Warmup steps for a run of totalSteps. */
  public int warmup(long totalSteps) {
    return warmupSteps > 0 ? warmupSteps : (int) Math.ceil(warmupRatio * totalSteps);
  }

  /** The multiplier of the base learning rate at 0-based step s of totalSteps. */
  public double factor(long s, long totalSteps) {
    int w = warmup(totalSteps);
    if (s < w) return (double) s / Math.max(1, w);
    return switch (kind) {
      case CONSTANT -> 1.0;
      case LINEAR -> Math.max(0.0, (double) (totalSteps - s) / Math.max(1, totalSteps - w));
      case COSINE -> {
        double progress = (double) (s - w) / Math.max(1, totalSteps - w);
        yield Math.max(0.0, 0.5 * (1.0 + Math.cos(Math.PI * progress)));
      }
    };
  }

  @Override
  public String toString() {
    String k = kind.name().toLowerCase(java.util.Locale.ROOT);
    if (warmupSteps > 0) return k + " (warmup " + warmupSteps + " steps)";
    if (warmupRatio > 0) return k + " (warmup ratio " + warmupRatio + ")";
    return k;
  }
}
