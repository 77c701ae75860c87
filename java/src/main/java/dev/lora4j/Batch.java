package dev.lora4j;

import dev.lora4j.data.TokenizedExample;
import java.util.Arrays;
import java.util.List;

/**
 * A batch of rows of equal length, as the engine takes it. Build one with {@link #collate} (rows
 * right-padded to the longest) or {@link #of}; packed rows carry position and segment ids.
 *
 * <p>All arrays are row-major [rows * seq]. attentionMask: 1 real token, 0 padding. labels: -100
 * where the position does not count. positionIds / segmentIds: null for one sequence per row
 * starting at position 0.
 */
public record Batch(
    int rows,
    int seq,
    int[] inputIds,
    int[] attentionMask,
    int[] labels,
    int[] positionIds,
    int[] segmentIds) {

  public Batch {
    if (rows <= 0 || seq <= 0) {
      throw new IllegalArgumentException("rows and seq must be > 0, got " + rows + " x " + seq);
    }
    long n = (long) rows * seq;
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
          what + " has " + a.length + " values, rows x seq needs " + n);
    }
  }

  /** Right-pads the examples to the longest with padId (mask 0, label -100). */
  public static Batch collate(List<TokenizedExample> examples, int padId) {
    if (examples.isEmpty()) throw new IllegalArgumentException("no examples to collate");
    int seq = 0;
    for (TokenizedExample e : examples) seq = Math.max(seq, e.length());
    int rows = examples.size();
    int[] ids = new int[rows * seq];
    int[] mask = new int[rows * seq];
    int[] labels = new int[rows * seq];
    Arrays.fill(ids, padId);
    Arrays.fill(labels, TokenizedExample.IGNORE);
    for (int r = 0; r < rows; r++) {
      TokenizedExample e = examples.get(r);
      System.arraycopy(e.inputIds(), 0, ids, r * seq, e.length());
      System.arraycopy(e.labels(), 0, labels, r * seq, e.length());
      Arrays.fill(mask, r * seq, r * seq + e.length(), 1);
    }
    return new Batch(rows, seq, ids, mask, labels, null, null);
  }

  /** One row per array, right-padded with 0; labels = input ids (every next token counts). */
  public static Batch of(int[]... rows) {
    List<TokenizedExample> ex =
        Arrays.stream(rows).map(r -> new TokenizedExample(r, null, "row")).toList();
    return collate(ex, 0);
  }

  /**
   * The label tokens the batch counts in the loss: per row, the positions {@code t >= 1} whose
   * label is not -100 ({@link TokenizedExample#labelTokens}). Sum it over the micro-batches of an
   * optimizer step to normalize the loss across gradient accumulation.
   */
  public long countedTokens() {
    if (labels == null) return 0;
    long c = 0;
    for (int r = 0; r < rows; r++) c += TokenizedExample.labelTokens(labels, r * seq, seq);
    return c;
  }

  /** Real (unpadded) tokens. */
  public long realTokens() {
    if (attentionMask == null) return (long) rows * seq;
    long n = 0;
    for (int m : attentionMask) n += m;
    return n;
  }
}
