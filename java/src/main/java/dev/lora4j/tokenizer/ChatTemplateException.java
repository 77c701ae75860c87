package dev.lora4j.tokenizer;

import dev.lora4j.Lora4jException;

/**
 * A chat template could not be parsed or rendered: a syntax error, an unsupported construct, or the
 * template itself rejected the conversation with {@code raise_exception(message)}, in which case
 * {@link #getMessage()} is the template's message (e.g. "Conversation roles must alternate
 * user/assistant/user/assistant/...").
 */
public class ChatTemplateException extends Lora4jException {
  private static final long serialVersionUID = 1L;

  /**
   * @param message what went wrong, or the message the template raised
   */
  public ChatTemplateException(String message) {
    super(message);
  }

  /**
   * The template itself refused the conversation with {@code raise_exception(message)} (roles that
   * do not alternate, a system message it takes no place for): a fault of the conversation. Any
   * other ChatTemplateException while rendering is the template's (a construct lora4j's Jinja does
   * not run), and every conversation that reaches it meets it.
   */
  public static final class Raised extends ChatTemplateException {
    private static final long serialVersionUID = 1L;

    public Raised(String message) {
      super(message);
    }
  }
}
