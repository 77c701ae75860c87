package dev.lora4j.data;

/**
 * Where a training run stands in its data: the epoch, and how many examples of that epoch's
 * (deterministically shuffled) example stream the batches so far have consumed.
 *
 * <p>Saved in a checkpoint and given back to {@link JsonlDataset#batches(DataPosition, int)}, it
 * reproduces exactly the batches the uninterrupted run would have produced next: the epoch's stream
 * is re-read and re-shuffled with the same seed and its first {@code examples} examples are
 * skipped. The position after the last batch of an epoch is {@code (epoch + 1, 0)}.
 *
 * @param epoch the epoch, from 0
 * @param examples examples of that epoch already consumed, from 0
 */
public record DataPosition(int epoch, long examples) {
  /** The start of the first epoch. */
  public static final DataPosition START = new DataPosition(0, 0);

  public DataPosition {
    if (epoch < 0 || examples < 0) {
      throw new IllegalArgumentException(
          "data position must not be negative, got epoch " + epoch + ", examples " + examples);
    }
  }

  /** As a user reads it: "epoch 1, after 16 examples" (epochs counted from 1). */
  @Override
  public String toString() {
    return "epoch " + (epoch + 1) + ", after " + examples + " example" + (examples == 1 ? "" : "s");
  }
}
