package dev.lora4j;

/**
 * The sum of the token cross-entropies over some batches and the number of label tokens they
 * counted: sums add across batches, so the mean over a whole dataset or optimizer step is the sum
 * of sums over the sum of tokens.
 *
 * @param sum sum of the counted tokens' cross-entropies (nats)
 * @param tokens label tokens counted (positions whose shifted label is not -100)
 */
public record LossSum(double sum, long tokens) {
  /** No tokens. */
  public static final LossSum ZERO = new LossSum(0, 0);

  /**
   * @return the mean loss per token, NaN when no token was counted
   */
  public double mean() {
    return tokens == 0 ? Double.NaN : sum / tokens;
  }

  /**
   * @return this plus another sum
   */
  public LossSum plus(LossSum o) {
    return new LossSum(sum + o.sum, tokens + o.tokens);
  }
}
