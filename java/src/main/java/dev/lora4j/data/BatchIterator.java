package dev.lora4j.data;

import java.util.Iterator;
import java.util.NoSuchElementException;
import java.util.concurrent.ArrayBlockingQueue;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.TimeUnit;

/**
 * The batches of a training run, from a {@link DataPosition} to the end of the last epoch (see
 * {@link JsonlDataset#batches(DataPosition, int)}).
 *
 * <p>With {@link DataConfig#prefetch()} a background thread ("lora4j-batches") reads, tokenizes and
 * collates ahead of the caller into a queue of at most 2 batches, so the next batch is ready while
 * the device runs the current one. An exception on that thread ends the iteration: the next {@link
 * #hasNext()} or {@link #next()} throws a {@link DataException} with the same message (the original
 * as its cause). {@link #close()} stops the thread and closes the file; always close the iterator
 * (try-with-resources).
 *
 * <p>The batch order depends only on the file, the {@link DataConfig} and the start position, not
 * on the threading: the same position always gives the same batches.
 */
public final class BatchIterator implements Iterator<DataBatch>, AutoCloseable {
  /** Batches prepared ahead of the caller. */
  public static final int QUEUE_CAPACITY = 2;

  private static final Object END = new Object();

  private record Failure(Throwable error) {}

  private final DataStats stats = new DataStats();
  private final BatchProducer producer;
  private final Thread thread;
  private final BlockingQueue<Object> queue;
  private DataPosition position;
  private DataBatch peeked;
  private boolean ended;
  private volatile boolean closed;

  BatchIterator(JsonlDataset dataset, DataPosition start, int epochs) {
    if (epochs < 1) throw new IllegalArgumentException("epochs must be >= 1, got " + epochs);
    this.position = start;
    this.producer = new BatchProducer(dataset, start, epochs, stats);
    if (dataset.config().prefetch()) {
      queue = new ArrayBlockingQueue<>(QUEUE_CAPACITY);
      thread = new Thread(this::produce, "lora4j-batches");
      thread.setDaemon(true);
      thread.start();
    } else {
      queue = null;
      thread = null;
    }
  }

  /** The counts of everything read so far (every epoch, including examples skipped to resume). */
  public DataStats stats() {
    return stats;
  }

  /**
   * The position after the last batch {@link #next()} returned (the start position before the
   * first): what a checkpoint taken now must save.
   */
  public DataPosition position() {
    return position;
  }

  @Override
  public boolean hasNext() {
    if (closed) return false;
    if (peeked != null) return true;
    if (ended) return false;
    if (thread == null) {
      try {
        peeked = producer.next();
      } catch (RuntimeException e) {
        ended = true;
        producer.close();
        throw e;
      }
      if (peeked == null) {
        ended = true;
        producer.close();
      }
      return peeked != null;
    }
    Object o;
    try {
      o = queue.take();
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new DataException("interrupted while waiting for the next batch", e);
    }
    if (o == END) {
      ended = true;
      return false;
    }
    if (o instanceof Failure f) {
      ended = true;
      throw rethrow(f.error());
    }
    peeked = (DataBatch) o;
    return true;
  }

  @Override
  public DataBatch next() {
    if (!hasNext()) throw new NoSuchElementException();
    DataBatch b = peeked;
    peeked = null;
    position = b.next();
    return b;
  }

  /** Stops the background thread (waiting for it to finish) and closes the file. Idempotent. */
  @Override
  public void close() {
    if (closed) return;
    closed = true;
    if (thread != null) {
      thread.interrupt();
      try {
        thread.join(TimeUnit.SECONDS.toMillis(10));
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
      }
      queue.clear();
    } else {
      producer.close();
    }
  }

  /** Whether the background thread is still running (false without prefetch). */
  boolean producerAlive() {
    return thread != null && thread.isAlive();
  }

  private void produce() {
    try {
      while (!closed) {
        DataBatch b = producer.next();
        if (b == null) {
          queue.put(END);
          return;
        }
        queue.put(b);
      }
    } catch (InterruptedException e) {
      // closed
    } catch (Throwable t) {
      if (!closed) {
        try {
          queue.put(new Failure(t));
        } catch (InterruptedException ignored) {
          // closed while reporting: nobody is waiting
        }
      }
    } finally {
      producer.close();
    }
  }

  private static DataException rethrow(Throwable t) {
    String msg = t.getMessage();
    return new DataException(msg != null ? msg : t.toString(), t);
  }
}
