package dev.lora4j.io;

/**
 * Waits that an interrupt does not cut short: the wait goes on, and the interrupt is set again on
 * the thread when it ends, for the caller's own checks (a queue hand-over or a result that must
 * arrive in order, where giving up half way would lose it).
 */
public final class Uninterruptibly {
  private Uninterruptibly() {}

  /** A blocking call that may be interrupted, and may throw X. */
  @FunctionalInterface
  public interface Wait<T, X extends Exception> {
    T get() throws InterruptedException, X;
  }

  /** A blocking call with no result. */
  @FunctionalInterface
  public interface Block {
    void run() throws InterruptedException;
  }

  /** Calls w until it returns without an interrupt; X passes through. */
  public static <T, X extends Exception> T get(Wait<T, X> w) throws X {
    boolean interrupted = false;
    try {
      while (true) {
        try {
          return w.get();
        } catch (InterruptedException e) {
          interrupted = true;
        }
      }
    } finally {
      if (interrupted) Thread.currentThread().interrupt();
    }
  }

  /** Runs b until it returns without an interrupt. */
  public static void run(Block b) {
    Uninterruptibly.<Void, RuntimeException>get(
        () -> {
          b.run();
          return null;
        });
  }
}
