package dev.lora4j.data;

import java.util.Arrays;

/**
 * One training example as the model sees it: token ids and, per position, the label (-100 where
 * the position does not count in the loss). labels[t] is the token the model should predict at
 * position t; the engine shifts (logits[t] predicts labels[t + 1]) as Hugging Face does.
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
    int c = 0;
    for (int t = 1; t < labels.length; t++) if (labels[t] != IGNORE) c++;
    return c;
  }

  /** The first n positions. */
  public TokenizedExample truncate(int n) {
    if (n >= inputIds.length) return this;
    return new TokenizedExample(
        Arrays.copyOf(inputIds, n), Arrays.copyOf(labels, n), source);
  }
}
