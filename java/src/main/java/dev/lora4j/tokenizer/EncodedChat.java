package dev.lora4j.tokenizer;

import java.util.Arrays;
import java.util.List;

/**
 * A conversation rendered by a {@link ChatTemplate} and tokenized: the input ids and, per token,
 * the message it came from, so that a trainer can compute the loss on assistant replies only.
 *
 * <p>A token belongs to message {@code m} when any of its characters came from {@code m}'s content
 * ({@link Segment.Kind#CONTENT}); tokens made only of template text belong to no message (-1),
 * except the EOS token that the template writes right after an assistant message, which belongs to
 * that message: it is what teaches the model to stop. {@link #trainMask()} is true exactly on
 * assistant content tokens and those closing EOS tokens.
 */
public final class EncodedChat {
  private final int[] ids;
  private final int[] message;
  private final boolean[] content;
  private final boolean[] train;
  private final List<ChatMessage> messages;

  EncodedChat(
      int[] ids, int[] message, boolean[] content, boolean[] train, List<ChatMessage> messages) {
    this.ids = ids;
    this.message = message;
    this.content = content;
    this.train = train;
    this.messages = List.copyOf(messages);
  }

  /**
   * @return the input ids (a copy)
   */
  public int[] ids() {
    return ids.clone();
  }

  /**
   * @return the number of tokens
   */
  public int length() {
    return ids.length;
  }

  /**
   * @param token a token position
   * @return the index of the message the token came from, or -1 for template tokens
   */
  public int messageIndex(int token) {
    return message[token];
  }

  /**
   * @param token a token position
   * @return the role of the message the token came from, or null for template tokens
   */
  public String role(int token) {
    return message[token] < 0 ? null : messages.get(message[token]).role();
  }

  /**
   * @param token a token position
   * @return whether the token holds characters of a message's content
   */
  public boolean isContent(int token) {
    return content[token];
  }

  /**
   * @return per token: assistant content, or the EOS that closes an assistant turn (a copy)
   */
  public boolean[] trainMask() {
    return train.clone();
  }

  /**
   * @return the labels for training on assistant replies: the id where {@link #trainMask()}, else
   *     -100
   */
  public int[] labels() {
    int[] out = new int[ids.length];
    for (int i = 0; i < ids.length; i++) {
      out[i] = train[i] ? ids[i] : -100;
    }
    return out;
  }

  /**
   * @return the messages this was encoded from
   */
  public List<ChatMessage> messages() {
    return messages;
  }

  @Override
  public String toString() {
    return "EncodedChat" + Arrays.toString(ids);
  }
}
