package dev.lora4j.data;

import dev.lora4j.tokenizer.ChatMessage;
import java.util.List;

/**
 * Turns a conversation into token ids and labels through a chat template (for Mistral, {@code
 * <s>[INST] user [/INST]assistant</s>[INST] ...}).
 *
 * <p>Message contents are tokenized literally; control tokens come only from the template. When
 * {@code completionsOnly} is true, every label is -100 ({@link TokenizedExample#IGNORE}) except the
 * tokens of assistant contents and the end-of-sequence token that closes each assistant turn; when
 * false every label equals its input id.
 */
public interface ChatEncoder {

  /**
   * Encodes one conversation.
   *
   * @param messages the messages, roles already checked to be system, user or assistant
   * @param completionsOnly whether to mask everything but assistant turns
   * @param source where the conversation came from ("file:line"), for the example and for errors
   * @return the example
   * @throws dev.lora4j.Lora4jException when the template rejects the conversation (for example
   *     roles that do not alternate); the dataset reports it with the file and line, or skips and
   *     counts the line when invalid lines are skipped
   */
  TokenizedExample encode(List<ChatMessage> messages, boolean completionsOnly, String source);

  /**
   * Encodes a conversational prompt / completion pair (TRL's layout {@code {"prompt": [messages],
   * "completion": [messages]}}) as the conversation prompt + completion. When {@code
   * completionsOnly} is true, only the completion's messages count (their contents and the
   * end-of-sequence tokens that close them), whatever their roles and whatever the prompt holds:
   * TRL masks the whole prompt. The default refuses: an encoder of the caller's own implements it
   * where it can.
   *
   * @throws dev.lora4j.Lora4jException as {@link #encode}, or when the encoder cannot tell the
   *     completion's tokens
   */
  default TokenizedExample encodeCompletion(
      List<ChatMessage> prompt,
      List<ChatMessage> completion,
      boolean completionsOnly,
      String source) {
    throw new DataException(
        source
            + ": this chat encoder ("
            + getClass().getName()
            + ") does not encode conversational prompt / completion lines");
  }
}
