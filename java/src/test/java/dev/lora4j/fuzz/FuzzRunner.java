package dev.lora4j.fuzz;

import dev.lora4j.Lora4jException;
import java.lang.management.ManagementFactory;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import java.util.function.Predicate;

/**
 * Runs seeded fuzz inputs against one target on a worker thread and classifies each outcome.
 *
 * <p>Input {@code i} of a target is generated from {@code new SplittableRandom(mix(seed, i))}
 * alone, so any failure reproduces by itself: run with {@code -Dlora4j.fuzz.target=NAME
 * -Dlora4j.fuzz.index=I} (and {@code -Dlora4j.fuzz.seed=S} when the base seed was changed). An
 * input passes when it returns normally (parsed to something valid; the case checks validity) or
 * throws a {@link Lora4jException} with a non-blank message, or an exception the case documents
 * (for instance IllegalArgumentException for a token id outside the vocabulary). Anything else
 * fails: another exception or error, more than {@code timeoutMs} on one input (the worker is
 * stopped and a new one continues), or more than {@code maxAllocBytes} allocated by one input.
 */
final class FuzzRunner {
  /** Base seed of every target; override with -Dlora4j.fuzz.seed. */
  static final long SEED = Long.getLong("lora4j.fuzz.seed", 0x10A4_F022L);

  /** Multiplies every target's input count; -Dlora4j.fuzz.scale=10 for a longer local run. */
  static final double SCALE = Double.parseDouble(System.getProperty("lora4j.fuzz.scale", "1"));

  static final String ONLY_TARGET = System.getProperty("lora4j.fuzz.target");
  static final int ONLY_INDEX = Integer.getInteger("lora4j.fuzz.index", -1);
  private static final int MAX_REPORTED = 20;

  /** One input: generate it from {@code rng} and feed it to the target. */
  @FunctionalInterface
  interface Case {
    void run(SplittableRandom rng, int index) throws Throwable;
  }

  /** The counts of one target. */
  static final class Result {
    final String name;
    final long seed;
    long inputs;
    long valid;
    long rejected;
    double seconds;
    final List<String> failures = new ArrayList<>();

    Result(String name, long seed) {
      this.name = name;
      this.seed = seed;
    }

    String summary() {
      return String.format(
          "fuzz %-22s inputs=%7d parsed-valid=%7d rejected-typed=%7d failures=%d"
              + " time=%.1fs seed=0x%X",
          name, inputs, valid, rejected, failures.size(), seconds, seed);
    }
  }

  private FuzzRunner() {}

  static long mix(long seed, long index) {
    long z = seed * 0x9E3779B97F4A7C15L + index * 0xBF58476D1CE4E5B9L;
    z = (z ^ (z >>> 30)) * 0xBF58476D1CE4E5B9L;
    z = (z ^ (z >>> 27)) * 0x94D049BB133111EBL;
    return z ^ (z >>> 31);
  }

  static int scaled(int count) {
    return (int) Math.max(1, Math.round(count * SCALE));
  }

  static Result run(
      String name,
      int count,
      long timeoutMs,
      long maxAllocBytes,
      Predicate<Throwable> alsoAllowed,
      Case c) {
    long seed = mix(SEED, name.hashCode());
    Result res = new Result(name, seed);
    if (ONLY_TARGET != null && !ONLY_TARGET.equals(name)) return res;
    int first = ONLY_INDEX >= 0 && ONLY_TARGET != null ? ONLY_INDEX : 0;
    int end = ONLY_INDEX >= 0 && ONLY_TARGET != null ? ONLY_INDEX + 1 : scaled(count);
    long t0 = System.nanoTime();
    int next = first;
    while (next < end && res.failures.size() < MAX_REPORTED) {
      Worker w = new Worker(res, seed, next, end, maxAllocBytes, alsoAllowed, c);
      w.setDaemon(true);
      w.setName("fuzz-" + name);
      w.start();
      while (w.isAlive()) {
        try {
          w.join(50);
        } catch (InterruptedException e) {
          Thread.currentThread().interrupt();
          throw new IllegalStateException(e);
        }
        long started = w.inputStart;
        if (w.isAlive() && started != 0 && System.nanoTime() - started > timeoutMs * 1_000_000) {
          int stuck = w.current;
          stopThread(w);
          synchronized (res) {
            res.inputs++;
            res.failures.add(
                describe(name, seed, stuck)
                    + ": no result after "
                    + timeoutMs
                    + " ms (hang or runaway loop)");
          }
          w.abandoned = true;
          break;
        }
      }
      next = w.abandoned ? w.current + 1 : end;
    }
    res.seconds = (System.nanoTime() - t0) / 1e9;
    return res;
  }

  @SuppressWarnings("removal")
  private static void stopThread(Thread t) {
    try {
      t.stop(); // the input is lost anyway; a runaway loop never checks for interruption
    } catch (UnsupportedOperationException e) {
      t.interrupt();
    }
  }

  static String describe(String name, long seed, int index) {
    return "target "
        + name
        + " input #"
        + index
        + " (rng seed 0x"
        + Long.toHexString(mix(seed, index))
        + "; rerun with -Dlora4j.fuzz.target="
        + name
        + " -Dlora4j.fuzz.index="
        + index
        + ")";
  }

  private static final class Worker extends Thread {
    private final Result res;
    private final long seed;
    private final int from;
    private final int end;
    private final long maxAlloc;
    private final Predicate<Throwable> alsoAllowed;
    private final Case c;
    volatile int current;
    volatile long inputStart;
    volatile boolean abandoned;

    Worker(
        Result res,
        long seed,
        int from,
        int end,
        long maxAlloc,
        Predicate<Throwable> alsoAllowed,
        Case c) {
      this.res = res;
      this.seed = seed;
      this.from = from;
      this.end = end;
      this.maxAlloc = maxAlloc;
      this.alsoAllowed = alsoAllowed;
      this.c = c;
    }

    @Override
    public void run() {
      com.sun.management.ThreadMXBean mx =
          (com.sun.management.ThreadMXBean) ManagementFactory.getThreadMXBean();
      for (int i = from; i < end && !abandoned; i++) {
        current = i;
        long alloc0 = mx.getCurrentThreadAllocatedBytes();
        inputStart = System.nanoTime();
        String failure = null;
        boolean valid = false;
        try {
          c.run(new SplittableRandom(mix(seed, i)), i);
          valid = true;
        } catch (ThreadDeath td) {
          throw td;
        } catch (Lora4jException e) {
          if (e.getMessage() == null || e.getMessage().isBlank()) {
            failure = "typed exception without a message: " + trace(e);
          }
        } catch (Throwable t) {
          if (!alsoAllowed.test(t) || t.getMessage() == null || t.getMessage().isBlank()) {
            failure = trace(t);
          }
        }
        inputStart = 0;
        long alloc = mx.getCurrentThreadAllocatedBytes() - alloc0;
        if (failure == null && alloc > maxAlloc) {
          failure =
              "allocated "
                  + (alloc >> 20)
                  + " MiB for one input (limit "
                  + (maxAlloc >> 20)
                  + " MiB)";
        }
        synchronized (res) {
          if (abandoned) return;
          res.inputs++;
          if (failure != null) {
            res.failures.add(describe(res.name, seed, i) + ": " + failure);
            if (res.failures.size() >= MAX_REPORTED) return;
          } else if (valid) {
            res.valid++;
          } else {
            res.rejected++;
          }
        }
      }
    }
  }

  static String trace(Throwable t) {
    StringBuilder sb = new StringBuilder(t.toString());
    StackTraceElement[] st = t.getStackTrace();
    for (int i = 0; i < Math.min(6, st.length); i++) sb.append("\n      at ").append(st[i]);
    if (t.getCause() != null && t.getCause() != t)
      sb.append("\n    caused by ").append(t.getCause());
    return sb.toString();
  }
}
