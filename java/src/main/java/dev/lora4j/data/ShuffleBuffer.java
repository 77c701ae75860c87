package dev.lora4j.data;

import java.util.Iterator;
import java.util.NoSuchElementException;
import java.util.Random;

/**
 * A shuffle over a stream with a bounded buffer, as {@code tf.data} and Hugging Face {@code
 * IterableDataset.shuffle} do: the buffer is filled with the first {@code size} items; then each
 * item handed out is a uniformly chosen slot of the buffer, and the slot is refilled from the
 * source; at the end the buffer drains in random order. At most {@code size} items are held. The
 * order depends only on the source order and the seed.
 *
 * <p>With a buffer smaller than the stream, an item moves at most about {@code size} places towards
 * the front; items far apart in the file stay roughly in file order. Make the buffer as large as
 * memory allows for a well mixed epoch.
 */
public final class ShuffleBuffer<T> implements Iterator<T> {
  private final Iterator<T> source;
  private final Object[] buffer;
  private final Random random;
  private int count;
  private boolean filled;

  /**
   * @param source the items in their original order
   * @param size the most items held; 0 or 1 hands the source through unchanged
   * @param seed the seed: the same source and seed give the same order
   */
  public ShuffleBuffer(Iterator<T> source, int size, long seed) {
    if (size < 0) throw new IllegalArgumentException("shuffle buffer size must be >= 0: " + size);
    this.source = source;
    this.buffer = new Object[Math.max(size, 1)];
    this.random = new Random(mix(seed));
  }

  /** The seed of epoch {@code epoch} of a run seeded with {@code seed}. */
  public static long epochSeed(long seed, int epoch) {
    return seed + epoch;
  }

  /** How many items the buffer holds now. */
  public int buffered() {
    return count;
  }

  @Override
  public boolean hasNext() {
    if (buffer.length == 1) return source.hasNext();
    fill();
    return count > 0;
  }

  @Override
  @SuppressWarnings("unchecked")
  public T next() {
    if (buffer.length == 1) return source.next();
    fill();
    if (count == 0) throw new NoSuchElementException();
    int j = random.nextInt(count);
    T out = (T) buffer[j];
    if (source.hasNext()) {
      buffer[j] = source.next();
    } else {
      buffer[j] = buffer[count - 1];
      buffer[--count] = null;
    }
    return out;
  }

  private void fill() {
    if (filled) return;
    while (count < buffer.length && source.hasNext()) buffer[count++] = source.next();
    filled = true;
  }

  /** SplitMix64's finalizer: neighbouring seeds give unrelated generators. */
  static long mix(long z) {
    z += 0x9E3779B97F4A7C15L;
    z = (z ^ (z >>> 30)) * 0xBF58476D1CE4E5B9L;
    z = (z ^ (z >>> 27)) * 0x94D049BB133111EBL;
    return z ^ (z >>> 31);
  }
}
