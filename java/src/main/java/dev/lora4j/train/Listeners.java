package dev.lora4j.train;

import dev.lora4j.TrainingListener;
import dev.lora4j.io.Uninterruptibly;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.locks.LockSupport;
import java.util.function.Consumer;

/**
 * A run's listeners, with the built-in ones (metrics.jsonl and the progress lines) on a thread of
 * their own: their formatting and writes (0.5-1.5 ms a step on a GPU machine) then run beside the
 * next step instead of between two steps.
 *
 * <p>Every listener still gets every event in the order the trainer raised it: the queued listeners
 * from one thread through one first-in first-out queue; a listener of the caller's own on the
 * training thread, after the queue is drained, so that it sees the output of every earlier event
 * written (a line of metrics.jsonl, a progress line). The queue holds at most {@value #CAPACITY}
 * events: a writer slower than the steps holds the trainer back instead of piling events up.
 *
 * <p>The first failure of a queued listener is thrown on the training thread at its next event or
 * drain, and that listener thread delivers nothing after it (as when the failure was thrown between
 * two steps). The trainer drains the queue before it saves a checkpoint, so that metrics.jsonl
 * holds every line the checkpoint covers when the checkpoint appears; before it reads metrics.jsonl
 * for the loss plot; before its own log lines; and at the end.
 *
 * <p>On by default for a GPU run only ({@link #background}); the system property {@code
 * lora4j.listenerThread} (true / false) decides instead when set.
 */
public final class Listeners {
  static final int CAPACITY = 1024;

  private final List<TrainingListener> all;
  private final List<String> names;
  private final boolean[] queued;
  private final Worker worker; // null: none queued

  /**
   * @param all the listeners in the order they get each event
   * @param background whether the built-in listeners run on the listener thread
   */
  public Listeners(List<TrainingListener> all, boolean background) {
    this.all = List.copyOf(all);
    this.names = this.all.stream().map(Listeners::name).toList();
    this.queued = new boolean[this.all.size()];
    boolean any = false;
    for (int i = 0; i < queued.length; i++) {
      queued[i] = background && builtIn(this.all.get(i));
      any |= queued[i];
    }
    this.worker = any ? new Worker(names) : null;
  }

  /**
   * Whether the built-in listeners get a thread of their own: on a GPU run, whose host cores are
   * idle while the device computes; not on the CPU backend, whose step keeps every core busy (there
   * the thread's ~1 ms a step came back as a slower forward and backward, two cores measured). The
   * system property {@code lora4j.listenerThread} (true / false) decides instead when set.
   */
  public static boolean background(boolean gpu) {
    String p = System.getProperty("lora4j.listenerThread");
    return p == null ? gpu : !"false".equalsIgnoreCase(p);
  }

  /** The listeners that only format and write, and so may run on the listener thread. */
  static boolean builtIn(TrainingListener l) {
    return l instanceof MetricsFile || l instanceof ProgressListener;
  }

  /** A listener's name in the step time breakdown. */
  public static String name(TrainingListener l) {
    if (l instanceof MetricsFile) return "metrics.jsonl";
    if (l instanceof ProgressListener) return "progress";
    String n = l.getClass().getSimpleName();
    return n.isEmpty() ? l.getClass().getName() : n;
  }

  public int size() {
    return all.size();
  }

  public String name(int i) {
    return names.get(i);
  }

  /** Whether listener i runs on the listener thread. */
  public boolean queued(int i) {
    return queued[i];
  }

  /** Delivers an event to every listener, in order. */
  public void each(Consumer<TrainingListener> event) {
    for (int i = 0; i < all.size(); i++) deliver(i, event);
  }

  /**
   * Delivers an event to listener i: queued for the listener thread, or called here after the queue
   * is drained.
   */
  public void deliver(int i, Consumer<TrainingListener> event) {
    TrainingListener l = all.get(i);
    if (queued[i]) {
      worker.submit(i, () -> event.accept(l));
    } else {
      drain();
      event.accept(l);
    }
  }

  /**
   * Waits until every queued event was delivered; throws the first failure of a queued listener.
   */
  public void drain() {
    if (worker != null) worker.drain();
  }

  /** Drains the queue and stops the listener thread (the end of a run). */
  public void close() {
    if (worker != null) worker.close();
  }

  /**
   * Stops the listener thread after a run that failed: the events queued before the failure are
   * still delivered; a listener's failure is added to the run's error instead of replacing it.
   */
  public void closeAfterFailure(Throwable runError) {
    if (worker == null) return;
    try {
      worker.close();
    } catch (RuntimeException | Error e) {
      if (e != runError) runError.addSuppressed(e);
    }
  }

  /**
   * The listener thread's time per listener over the events delivered so far, in milliseconds per
   * step over {@code steps} steps: "; on the listener thread: metrics.jsonl 0.45, progress 0.31",
   * or "" without a listener thread or before any step. Call after {@link #drain()}.
   */
  public String threadSummary(long steps) {
    if (worker == null || steps <= 0) return "";
    StringBuilder b = new StringBuilder();
    for (Map.Entry<String, Long> e : worker.busy().entrySet())
      b.append(b.length() == 0 ? "; on the listener thread (all steps): " : ", ")
          .append(e.getKey())
          .append(String.format(Locale.ROOT, " %.2f", e.getValue() / 1e6 / steps));
    return b.toString();
  }

  /**
   * The listener thread: one queue, its events run in order, the first failure kept. The training
   * thread only links an event into the queue and never wakes the listener thread, which looks for
   * events every {@link #POLL_NANOS}: a wake-up is a system call and, on a virtual machine, an
   * interrupt to another processor, and it cost the handover 0.2-0.4 ms an event
   * (ArrayBlockingQueue's put, measured on the build machine and the GPU machine). A line is
   * written at most that much later; a drain waits at most that much longer.
   */
  private static final class Worker {
    private static final Runnable STOP = () -> {};
    static final long POLL_NANOS = 1_000_000;
    private final ConcurrentLinkedQueue<Runnable> queue = new ConcurrentLinkedQueue<>();
    private final AtomicInteger size = new AtomicInteger(); // events queued, at most CAPACITY
    private final Thread thread;
    private final List<String> names;
    private final long[] busy; // per listener, written by the listener thread only
    private volatile Throwable failure;
    private boolean stopped;

    Worker(List<String> names) {
      this.names = names;
      this.busy = new long[names.size()];
      thread = new Thread(this::loop, "lora4j-listeners");
      thread.setDaemon(true);
      thread.start();
    }

    private void loop() {
      while (true) {
        Runnable r = queue.poll();
        if (r == null) {
          LockSupport.parkNanos(this, POLL_NANOS);
          Thread.interrupted(); // no one but STOP ends it: a drain may be waiting
          continue;
        }
        size.decrementAndGet();
        if (r == STOP) return;
        r.run();
      }
    }

    void submit(int listener, Runnable event) {
      rethrow();
      if (stopped) throw new IllegalStateException("the listener thread was stopped");
      put(
          () -> {
            if (failure != null) return;
            long t = System.nanoTime();
            try {
              event.run();
            } catch (Throwable e) {
              failure = e;
            } finally {
              busy[listener] += System.nanoTime() - t;
            }
          });
    }

    /** Puts r on the queue, waiting for room; an interrupt is kept for the caller. */
    private void put(Runnable r) {
      boolean interrupted = false;
      while (size.get() >= CAPACITY) { // the training thread alone adds: room seen stays
        LockSupport.parkNanos(this, POLL_NANOS);
        interrupted |= Thread.interrupted();
      }
      size.incrementAndGet();
      queue.add(r);
      if (interrupted) Thread.currentThread().interrupt();
    }

    void drain() {
      if (!stopped) {
        CountDownLatch done = new CountDownLatch(1);
        put(done::countDown);
        Uninterruptibly.run(done::await);
      }
      rethrow();
    }

    void close() {
      if (stopped) {
        rethrow();
        return;
      }
      try {
        drain();
      } finally {
        stopped = true;
        put(STOP);
      }
    }

    /** The time per listener name, summed over listeners of one name. */
    Map<String, Long> busy() {
      Map<String, Long> m = new LinkedHashMap<>();
      for (int i = 0; i < busy.length; i++)
        if (busy[i] > 0) m.merge(names.get(i), busy[i], Long::sum);
      return m;
    }

    private void rethrow() {
      Throwable f = failure;
      if (f == null) return;
      if (f instanceof RuntimeException e) throw e;
      if (f instanceof Error e) throw e;
      throw new IllegalStateException("a listener failed: " + f, f);
    }
  }
}
