package dev.lora4j.data;

import dev.lora4j.tokenizer.Tokenizer;
import java.util.Objects;

/**
 * The {@link TextEncoder} of a Hugging Face tokenizer: {@link Tokenizer#encode(String, boolean)}
 * (literal: special-token text in data stays ordinary characters) and the tokenizer's special ids.
 *
 * <p>The pad id is the tokenizer's pad token when {@code tokenizer_config.json} sets one, else the
 * eos token (what TRL does for Mistral, which has no pad token), else 0. Padding positions are
 * masked, so the choice never changes the loss.
 */
public final class TokenizerTextEncoder implements TextEncoder {
  private final Tokenizer tokenizer;
  private final int padId;

  /**
   * @param tokenizer the tokenizer of the model being trained
   */
  public TokenizerTextEncoder(Tokenizer tokenizer) {
    this.tokenizer = Objects.requireNonNull(tokenizer, "tokenizer");
    int pad = tokenizer.padId();
    if (pad < 0) pad = tokenizer.eosId();
    this.padId = Math.max(pad, 0);
    if (tokenizer.eosId() < 0) {
      throw new DataException(
          "the tokenizer has no end-of-sequence token; training data needs one");
    }
  }

  /** The tokenizer. */
  public Tokenizer tokenizer() {
    return tokenizer;
  }

  @Override
  public int[] encodeText(String text, boolean addBos) {
    return tokenizer.encode(text, addBos && tokenizer.bosId() >= 0);
  }

  @Override
  public int bosId() {
    return tokenizer.bosId();
  }

  @Override
  public int eosId() {
    return tokenizer.eosId();
  }

  @Override
  public int padId() {
    return padId;
  }

  @Override
  public int vocabSize() {
    return tokenizer.vocabSize();
  }
}
