package dev.lora4j.nativ;

import dev.lora4j.nativ.Lora4jLibrary.lora4j_batch;
import org.bytedeco.javacpp.IntPointer;

/**
 * One batch for the engine, rows of equal length: int arrays of batch * seq values, row-major.
 * attentionMask (1 real, 0 padding), labels (-100 not counted), positionIds and segmentIds may
 * be null (see lora4j.h for their meaning).
 */
public record NativeBatch(
    int batch,
    int seq,
    int[] inputIds,
    int[] attentionMask,
    int[] labels,
    int[] positionIds,
    int[] segmentIds) {

  public NativeBatch {
    if (batch <= 0 || seq <= 0) {
      throw new IllegalArgumentException("batch and seq must be > 0, got " + batch + " x " + seq);
    }
    long n = (long) batch * seq;
    check("input_ids", inputIds, n, false);
    check("attention_mask", attentionMask, n, true);
    check("labels", labels, n, true);
    check("position_ids", positionIds, n, true);
    check("segment_ids", segmentIds, n, true);
  }

  private static void check(String what, int[] a, long n, boolean nullable) {
    if (a == null) {
      if (!nullable) throw new IllegalArgumentException(what + " is null");
      return;
    }
    if (a.length != n) {
      throw new IllegalArgumentException(
          what + " has " + a.length + " values, batch x seq needs " + n);
    }
  }

  /** Number of label positions that count in the loss (shifted: labels[t+1] for t < seq-1). */
  public long countedTokens() {
    if (labels == null) return 0;
    long c = 0;
    for (int r = 0; r < batch; r++) {
      for (int t = 1; t < seq; t++) {
        if (labels[r * seq + t] != -100) c++;
      }
    }
    return c;
  }

  Bound bind() {
    return new Bound(this);
  }

  /** The native struct and its buffers, alive while the call runs. */
  static final class Bound implements AutoCloseable {
    private final lora4j_batch struct = new lora4j_batch();
    private final IntPointer[] owned = new IntPointer[5];

    Bound(NativeBatch b) {
      struct.batch(b.batch()).seq(b.seq());
      struct.input_ids(owned[0] = new IntPointer(b.inputIds()));
      if (b.attentionMask() != null) struct.attention_mask(owned[1] = new IntPointer(b.attentionMask()));
      if (b.labels() != null) struct.labels(owned[2] = new IntPointer(b.labels()));
      if (b.positionIds() != null) struct.position_ids(owned[3] = new IntPointer(b.positionIds()));
      if (b.segmentIds() != null) struct.segment_ids(owned[4] = new IntPointer(b.segmentIds()));
    }

    lora4j_batch struct() {
      return struct;
    }

    @Override
    public void close() {
      struct.close();
      for (IntPointer p : owned) {
        if (p != null) p.close();
      }
    }
  }
}
