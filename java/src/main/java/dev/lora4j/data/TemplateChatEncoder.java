package dev.lora4j.data;

import dev.lora4j.tokenizer.ChatMessage;
import dev.lora4j.tokenizer.ChatTemplate;
import dev.lora4j.tokenizer.EncodedChat;
import dev.lora4j.tokenizer.Tokenizer;
import java.nio.file.Path;
import java.util.List;

/**
 * {@link ChatEncoder} over a model's chat template: message contents tokenized literally, control
 * tokens from the template only; with completionsOnly, labels only on assistant contents and the
 * end-of-sequence token that closes each assistant turn.
 */
public final class TemplateChatEncoder implements ChatEncoder {
  private final ChatTemplate template;
  private final Tokenizer tokenizer;

  public TemplateChatEncoder(ChatTemplate template, Tokenizer tokenizer) {
    this.template = template;
    this.tokenizer = tokenizer;
  }

  /**
   * The encoder of a model folder, or null when it has no chat template (chat_template.jinja, or a
   * chat_template in tokenizer_config.json): such a folder trains on text and pre-tokenized data,
   * and chat lines are refused by name. (Its absence was thrown as an error, so a base model
   * without a template could not be used at all.)
   */
  public static ChatEncoder forFolder(Path dir, Tokenizer tokenizer) {
    if (tokenizer == null || !ChatTemplate.present(dir)) return null;
    return new TemplateChatEncoder(ChatTemplate.fromModelDir(dir), tokenizer);
  }

  public ChatTemplate template() {
    return template;
  }

  @Override
  public TokenizedExample encode(
      List<ChatMessage> messages, boolean completionsOnly, String source) {
    // A ChatTemplateException (the template refused the conversation) propagates: the dataset
    // reports it with file and line, or skips and counts the line with skipInvalid.
    EncodedChat ec = template.encode(messages, false, tokenizer);
    int[] ids = ec.ids();
    int[] labels = ids.clone();
    if (completionsOnly) {
      boolean[] train = ec.trainMask();
      for (int i = 0; i < ids.length; i++) if (!train[i]) labels[i] = TokenizedExample.IGNORE;
    }
    return new TokenizedExample(ids, labels, source);
  }

  @Override
  public TokenizedExample encodeCompletion(
      List<ChatMessage> prompt,
      List<ChatMessage> completion,
      boolean completionsOnly,
      String source) {
    List<ChatMessage> all = new java.util.ArrayList<>(prompt);
    all.addAll(completion);
    EncodedChat ec = template.encode(all, false, tokenizer);
    int[] ids = ec.ids();
    int[] labels = ids.clone();
    if (completionsOnly) {
      for (int i = 0; i < ids.length; i++) {
        if (ec.messageIndex(i) < prompt.size()) labels[i] = TokenizedExample.IGNORE;
      }
    }
    return new TokenizedExample(ids, labels, source);
  }

  /** Prompt ids for generation: the conversation with the generation prompt added. */
  public int[] promptIds(List<ChatMessage> messages) {
    return template.encode(messages, true, tokenizer).ids();
  }
}
