package dev.lora4j.data;

import java.util.Arrays;

/**
 * One training example as the model sees it: token ids and, per position, the label (-100 where the
 * position does not count in the loss). labels[t] is the token the model should predict at position
 * t; the engine shifts (logits[t] predicts labels[t + 1]) as Hugging Face does.
 *
 * @param source where the example came from ("file:line"), for error messages and reports
 */
public record TokenizedExample(int[] inputIds, int[] labels, String source) {
  public static final int IGNORE = -100;

  public TokenizedExample {
    if (inputIds == null || inputIds.length == 0) {
      throw new DataException(source + ": example has no tokens");
    }
    if (labels == null) {
      labels = inputIds.clone();
    } else if (labels.length != inputIds.length) {
      throw new DataException(
          source
              + ": labels has "
              + labels.length
              + " values but input_ids has "
              + inputIds.length);
    }
  }

  public int length() {
    return inputIds.length;
  }

  /** Number of positions that count in the loss after the shift (labels[1..] not -100). */
  public int countedTokens() {
    return labelTokens(labels, 0, labels.length);
  }

  /**
   * The label tokens of one sequence stored at {@code labels[from, from + length)}: its positions
   * {@code t >= 1} whose label is not -100 ({@code logits[t - 1]} predicts {@code labels[t]}, so
   * the first position never counts). The one count of label tokens on the Java side (examples,
   * batch rows, the normalization of a step's loss); the native core counts the same, which a test
   * holds on random batches.
   *
   * @param labels labels, -100 where a position does not count
   * @param from index of the sequence's first position
   * @param length positions in the sequence
   * @return the number of counted positions
   */
  public static int labelTokens(int[] labels, int from, int length) {
    int c = 0;
    for (int t = from + 1; t < from + length; t++) if (labels[t] != IGNORE) c++;
    return c;
  }

  /** The first n positions. */
  public TokenizedExample truncate(int n) {
    if (n >= inputIds.length) return this;
    return new TokenizedExample(Arrays.copyOf(inputIds, n), Arrays.copyOf(labels, n), source);
  }
}
