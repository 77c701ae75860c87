package dev.lora4j.data;

import java.util.Objects;
import java.util.Set;

/**
 * One message of a conversation, as found in a chat-format line ({@code {"role": ..., "content":
 * ...}}).
 *
 * @param role one of {@link #ROLES}: "system", "user", "assistant"
 * @param content the text of the message, tokenized literally
 */
public record ChatMessage(String role, String content) {
  /** The roles a chat line may use. */
  public static final Set<String> ROLES = Set.of("system", "user", "assistant");

  public ChatMessage {
    Objects.requireNonNull(role, "role");
    Objects.requireNonNull(content, "content");
  }

  /** True for an assistant message: the only content that counts when training on completions. */
  public boolean isAssistant() {
    return "assistant".equals(role);
  }
}
