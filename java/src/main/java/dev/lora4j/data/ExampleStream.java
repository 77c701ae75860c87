package dev.lora4j.data;

import java.util.Iterator;

/**
 * One pass over a dataset's examples, read from the file as they are asked for. Close it to release
 * the file (a pass read to the end closes itself).
 *
 * <p>{@link #hasNext()} and {@link #next()} throw {@link DataException} for a bad line (unless
 * skipInvalid), and at the end of a pass that produced no example at all.
 */
public interface ExampleStream extends Iterator<TokenizedExample>, AutoCloseable {

  /** The counts of this pass so far (shared with other passes when the caller passed one in). */
  DataStats stats();

  @Override
  void close();
}
