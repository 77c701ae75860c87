package dev.lora4j.data;

import dev.lora4j.Batch;
import java.util.Arrays;
import java.util.List;

/**
 * Turns examples into {@link Batch}es: one right-padded example per row, or several examples packed
 * into each row.
 *
 * <p><b>Padding</b>: rows are right-padded to the longest example of the batch with the pad id;
 * padding has attention mask 0 and label -100; position and segment ids are left null (one sequence
 * per row, positions 0, 1, 2, ...).
 *
 * <p><b>Packing</b>: each row is exactly {@code seq} tokens: its examples one after another, then
 * padding. Position ids restart at 0 at the first token of each example. Segment ids number the
 * examples of the row 1, 2, 3, ...; padding has segment 0, mask 0, label -100 and position 0. The
 * engine attends only within a segment, so no example sees another. Because the loss is shifted
 * ({@code logits[t]} predicts {@code labels[t + 1]}), the label at the first position of every
 * packed example is set to -100: otherwise the last token of the previous example would be trained
 * to predict the first token of the next one. (The first position of a row never counts anyway, so
 * a packed row counts exactly the tokens its examples count alone.)
 */
public final class Collation {
  private Collation() {}

  /** One example per row, right-padded to the longest with {@code padId}. */
  public static Batch pad(List<TokenizedExample> examples, int padId) {
    return Batch.collate(examples, padId);
  }

  /**
   * Packs rows of examples.
   *
   * @param rows the examples of each row, in order; each row's lengths must sum to at most seq
   * @param seq the row length
   * @param padId the id padding carries
   */
  public static Batch pack(List<List<TokenizedExample>> rows, int seq, int padId) {
    if (rows.isEmpty()) throw new IllegalArgumentException("no rows to pack");
    int n = rows.size();
    int[] ids = new int[n * seq];
    int[] mask = new int[n * seq];
    int[] labels = new int[n * seq];
    int[] pos = new int[n * seq];
    int[] seg = new int[n * seq];
    Arrays.fill(ids, padId);
    Arrays.fill(labels, TokenizedExample.IGNORE);
    for (int r = 0; r < n; r++) {
      int at = r * seq;
      int used = 0;
      int segment = 0;
      for (TokenizedExample e : rows.get(r)) {
        int len = e.length();
        if (used + len > seq) {
          throw new IllegalArgumentException(
              "row " + r + " holds more than " + seq + " tokens (at " + e.source() + ")");
        }
        segment++;
        System.arraycopy(e.inputIds(), 0, ids, at + used, len);
        System.arraycopy(e.labels(), 0, labels, at + used, len);
        labels[at + used] = TokenizedExample.IGNORE;
        for (int t = 0; t < len; t++) {
          mask[at + used + t] = 1;
          pos[at + used + t] = t;
          seg[at + used + t] = segment;
        }
        used += len;
      }
    }
    return new Batch(n, seq, ids, mask, labels, pos, seg);
  }
}
