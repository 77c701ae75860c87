package dev.lora4j.tokenizer;

import java.util.Objects;
import java.util.Set;

/**
 * One message of a conversation, as the {@code messages} list of Hugging Face {@code
 * apply_chat_template}: a role ({@code "system"}, {@code "user"}, {@code "assistant"}, ...) and its
 * text content.
 *
 * @param role the role; which roles are accepted is up to the chat template
 * @param content the text; always tokenized literally, never parsed for control tokens
 */
public record ChatMessage(String role, String content) {
  /** The roles a chat line of training data may use. */
  public static final Set<String> ROLES = Set.of("system", "user", "assistant");

  /**
   * @param role the role
   * @param content the text
   * @throws NullPointerException when role or content is null
   */
  public ChatMessage {
    Objects.requireNonNull(role, "role");
    Objects.requireNonNull(content, "content");
  }

  /**
   * @param content the text
   * @return a message with role {@code system}
   */
  public static ChatMessage system(String content) {
    return new ChatMessage("system", content);
  }

  /**
   * @param content the text
   * @return a message with role {@code user}
   */
  public static ChatMessage user(String content) {
    return new ChatMessage("user", content);
  }

  /**
   * @param content the text
   * @return a message with role {@code assistant}
   */
  public static ChatMessage assistant(String content) {
    return new ChatMessage("assistant", content);
  }

  /**
   * @return true for an assistant message: the only content that counts when training on
   *     completions
   */
  public boolean isAssistant() {
    return "assistant".equals(role);
  }
}
