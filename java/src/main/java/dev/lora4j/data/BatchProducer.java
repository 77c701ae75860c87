package dev.lora4j.data;

import dev.lora4j.Batch;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;

/**
 * Builds the batches of a run from a position, one at a time, on whatever thread calls it.
 *
 * <p>Without packing a batch is the next batchSize examples. With packing, examples are placed
 * greedily in stream order into the first of the batch's rows with room for them (first fit; a new
 * row is opened while the batch has fewer than batchSize rows); the first example that fits nowhere
 * closes the batch and starts the next one. With {@link DataConfig#groupByLength()} (no packing)
 * the stream is read in groups of {@link DataConfig#GROUP_BATCHES} batches' examples, each group
 * sorted by length (longest first, ties in stream order) and handed out as batches in that order; a
 * position inside a group is the group's start plus whole batches, so a resume re-reads the group,
 * sorts it again and skips the batches already handed out. A batch never spans two epochs: the last
 * batch of an epoch may be partial.
 */
final class BatchProducer implements AutoCloseable {
  private final JsonlDataset dataset;
  private final DataConfig config;
  private final int epochs;
  private final DataStats stats;
  private final int padId;

  private int epoch;
  private long toSkip;
  private long consumed;
  private ExampleStream stream;
  private TokenizedExample pending;

  /** The batches of the current length group not yet handed out (groupByLength). */
  private final ArrayDeque<List<TokenizedExample>> grouped = new ArrayDeque<>();

  BatchProducer(JsonlDataset dataset, DataPosition start, int epochs, DataStats stats) {
    this.dataset = dataset;
    this.config = dataset.config();
    this.epochs = epochs;
    this.stats = stats;
    this.padId = dataset.textEncoder().padId();
    this.epoch = start.epoch();
    this.toSkip = start.examples();
  }

  /** The next batch, or null after the last epoch. */
  DataBatch next() {
    while (epoch < epochs) {
      if (stream == null) openEpoch();
      DataBatch b = config.packing() ? packed() : padded();
      if (b != null) return b;
      endEpoch(); // only when started exactly at the end of an epoch
    }
    return null;
  }

  private void openEpoch() {
    stream = dataset.examples(epoch, stats);
    consumed = 0;
    pending = null;
    grouped.clear();
    long skipBatches = 0;
    if (config.groupByLength()) {
      long into = toSkip % groupSize();
      if (into % config.batchSize() != 0) {
        throw new DataException(
            dataset.file()
                + ": data position (epoch "
                + epoch
                + ", "
                + toSkip
                + " examples) is not at a batch of its length group (batches of "
                + config.batchSize()
                + ", groups of "
                + DataConfig.GROUP_BATCHES
                + " batches); was the batch size or groupByLength changed?");
      }
      skipBatches = into / config.batchSize();
      toSkip -= into;
    }
    for (; toSkip > 0; toSkip--) {
      if (!stream.hasNext()) throw pastTheEnd(consumed + toSkip);
      stream.next();
      consumed++;
    }
    if (skipBatches > 0) {
      long want = consumed + skipBatches * config.batchSize();
      fillGroup();
      for (long k = 0; k < skipBatches && !grouped.isEmpty(); k++)
        consumed += grouped.poll().size();
      if (consumed != want) throw pastTheEnd(want);
    }
  }

  /** A start position of {@code examples} in an epoch that has only {@code consumed}. */
  private DataException pastTheEnd(long examples) {
    return new DataException(
        dataset.file()
            + ": data position (epoch "
            + epoch
            + ", "
            + examples
            + " examples) is past the end of the epoch, which has "
            + consumed
            + " examples; was the file or the data configuration changed?");
  }

  /** Examples per length group. */
  private long groupSize() {
    return (long) config.batchSize() * DataConfig.GROUP_BATCHES;
  }

  /** Reads the next length group from the stream and cuts it into batches, longest first. */
  private void fillGroup() {
    List<TokenizedExample> all = new ArrayList<>();
    while (all.size() < groupSize() && stream.hasNext()) all.add(stream.next());
    all.sort(Comparator.comparingInt(TokenizedExample::length).reversed()); // stable
    for (int i = 0; i < all.size(); i += config.batchSize())
      grouped.add(new ArrayList<>(all.subList(i, Math.min(all.size(), i + config.batchSize()))));
  }

  private void endEpoch() {
    if (stream != null) stream.close();
    stream = null;
    pending = null;
    grouped.clear();
    epoch++;
    consumed = 0;
    toSkip = 0;
  }

  private DataBatch padded() {
    List<TokenizedExample> rows;
    if (config.groupByLength()) {
      if (grouped.isEmpty()) fillGroup();
      rows = grouped.poll();
      if (rows == null) return null;
    } else {
      rows = new ArrayList<>(Math.min(config.batchSize(), 256)); // grows past that if need be
      while (rows.size() < config.batchSize() && stream.hasNext()) rows.add(stream.next());
      if (rows.isEmpty()) return null;
    }
    consumed += rows.size();
    return finish(Collation.pad(rows, padId), rows.size());
  }

  private DataBatch packed() {
    int seq = config.maxSeqLength();
    List<List<TokenizedExample>> rows = new ArrayList<>();
    List<Integer> room = new ArrayList<>();
    int placed = 0;
    while (true) {
      TokenizedExample e = pending;
      pending = null;
      if (e == null) {
        if (!stream.hasNext()) break;
        e = stream.next();
      }
      if (e.length() > seq) e = e.truncate(seq); // the reader already truncates; defensive
      int r = 0;
      while (r < rows.size() && room.get(r) < e.length()) r++;
      if (r == rows.size()) {
        if (rows.size() == config.batchSize()) {
          pending = e;
          break;
        }
        rows.add(new ArrayList<>());
        room.add(seq);
      }
      rows.get(r).add(e);
      room.set(r, room.get(r) - e.length());
      placed++;
    }
    if (placed == 0) return null;
    consumed += placed;
    return finish(Collation.pack(rows, seq, padId), placed);
  }

  private DataBatch finish(Batch batch, int examples) {
    int batchEpoch = epoch;
    DataPosition next;
    if (pending == null && grouped.isEmpty() && !stream.hasNext()) {
      endEpoch();
      next = new DataPosition(epoch, 0);
    } else {
      next = new DataPosition(epoch, consumed);
    }
    return new DataBatch(batch, batch.countedTokens(), examples, batchEpoch, next);
  }

  @Override
  public void close() {
    if (stream != null) stream.close();
    stream = null;
  }
}
