package dev.lora4j.data;

/**
 * What the data pipeline needs from a tokenizer: literal tokenization of data text and the ids of
 * the special tokens.
 *
 * <p>{@link #encodeText} must be <em>literal</em>: {@code <s>}, {@code </s>}, {@code [INST]} or any
 * other control-token spelling inside the text are tokenized as ordinary characters, never turned
 * into control tokens. Control tokens enter a sequence only through {@link #bosId()}, {@link
 * #eosId()} and the chat template.
 */
public interface TextEncoder {

  /**
   * Tokenizes text literally.
   *
   * @param text the text, possibly empty
   * @param addBos whether to put the beginning-of-sequence token first
   * @return the token ids (a new array the caller may keep)
   */
  int[] encodeText(String text, boolean addBos);

  /** The beginning-of-sequence token id. */
  int bosId();

  /** The end-of-sequence token id, appended after every text and completion. */
  int eosId();

  /** The id padding positions carry (they are masked out; any valid id works). */
  int padId();

  /** Size of the vocabulary, used to validate pre-tokenized ids; 0 or less when unknown. */
  int vocabSize();

  /**
   * Null when text can be tokenized; else why not (for a model folder without tokenizer.json), so
   * that chat data fails with the real reason.
   */
  default String unavailableReason() {
    return null;
  }
}
