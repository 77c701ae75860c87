package dev.lora4j.tokenizer;

/**
 * A piece of a rendered chat: text written by the template, or text that came from a message.
 * Concatenating the texts of all segments gives the string Hugging Face {@code
 * apply_chat_template(..., tokenize=False)} returns.
 *
 * @param kind where the text came from
 * @param text the text (never empty)
 * @param messageIndex the index of the message the text came from, -1 for template text
 * @param role the role of that message, null for template text
 */
public record Segment(Kind kind, String text, int messageIndex, String role) {

  /** Where a segment's text came from. */
  public enum Kind {
    /** written by the template: the only text whose special-token strings become control tokens */
    TEMPLATE,
    /** a message's content, tokenized literally */
    CONTENT,
    /** another field of a message the template printed (its role), tokenized literally */
    MESSAGE_FIELD
  }
}
