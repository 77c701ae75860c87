package dev.lora4j.tokenizer;

import java.util.Arrays;

/**
 * The text of a growing token sequence, piece by piece, as generation streams it: {@link #push}
 * takes the next token and returns the text it completes; the pieces joined, with {@link #flush}'s
 * last, are {@link Tokenizer#decode} of the whole sequence.
 *
 * <p>Each push decodes a short window, not the sequence so far (which made streaming quadratic:
 * with Mistral's tokenizer on the build machine, 0.22 ms a token over 512 tokens, 0.1-1 ms over
 * 2048, against ~5 us a token for the window once compiled). The window starts at the last piece's
 * first token: decoded with and without the new tokens it gives the new text as the difference, and
 * the start's context is the same in both, so the leading space that decode removes at the start of
 * a text goes from both alike.
 *
 * <p>A run of {@code <0xNN>} byte tokens gives its text when a token that is not a byte ends it (or
 * at {@link #flush}): decode turns a whole run into U+FFFD, one a byte, when the run is not valid
 * UTF-8, so a character that the run's first bytes complete may still become U+FFFD by the bytes
 * after it. A special token that skipSpecialTokens leaves out does not end a run.
 */
public final class TextStream {
  private final Tokenizer tokenizer;
  private final boolean skipSpecialTokens;
  private int[] ids = new int[64];
  private int count;
  private int prefix; // the window's first token
  private int read; // the first token after the text given out so far
  private boolean inRun; // the last token that decode keeps is a byte token

  public TextStream(Tokenizer tokenizer, boolean skipSpecialTokens) {
    this.tokenizer = tokenizer;
    this.skipSpecialTokens = skipSpecialTokens;
  }

  /**
   * Adds a token.
   *
   * @return the text it completes (empty when it completes none yet)
   * @throws IllegalArgumentException for an id outside the vocabulary (the stream unchanged)
   */
  public String push(int id) {
    String token = tokenizer.idToToken(id);
    if (count == ids.length) ids = Arrays.copyOf(ids, 2 * count);
    ids[count++] = id;
    if (!(skipSpecialTokens && tokenizer.isSpecial(id))) {
      inRun = Tokenizer.byteToken(token) >= 0;
    }
    return inRun ? "" : next(false);
  }

  /** The text of the tokens pushed that no push has given out yet (a byte run's, at the end). */
  public String flush() {
    return next(true);
  }

  /** The tokens pushed so far. */
  public int[] ids() {
    return Arrays.copyOf(ids, count);
  }

  /** Tokens the next push decodes besides itself (the window; the tests hold it short). */
  int windowLength() {
    return count - prefix;
  }

  private String next(boolean last) {
    if (read == count) return "";
    String before = tokenizer.decode(Arrays.copyOfRange(ids, prefix, read), skipSpecialTokens);
    String now = tokenizer.decode(Arrays.copyOfRange(ids, prefix, count), skipSpecialTokens);
    if (!last && now.length() <= before.length()) return "";
    String piece = now.length() > before.length() ? now.substring(before.length()) : "";
    prefix = read;
    read = count;
    return piece;
  }
}
