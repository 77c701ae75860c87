package dev.lora4j.nativ;

import dev.lora4j.Batch;
import dev.lora4j.nativ.Lora4jLibrary.lora4j_batch;
import org.bytedeco.javacpp.IntPointer;

/** A {@link Batch} as the native struct and its buffers, alive while one engine call runs. */
final class BoundBatch implements AutoCloseable {
  private final lora4j_batch struct = new lora4j_batch();
  private final IntPointer[] owned = new IntPointer[5];

  BoundBatch(Batch b) {
    struct.batch(b.rows()).seq(b.seq());
    struct.input_ids(owned[0] = new IntPointer(b.inputIds()));
    if (b.attentionMask() != null)
      struct.attention_mask(owned[1] = new IntPointer(b.attentionMask()));
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
