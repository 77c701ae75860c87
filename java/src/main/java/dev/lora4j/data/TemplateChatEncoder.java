package dev.lora4j.data;

import dev.lora4j.tokenizer.ChatMessage;
import dev.lora4j.tokenizer.ChatTemplate;
import dev.lora4j.tokenizer.ChatTemplateException;
import dev.lora4j.tokenizer.EncodedChat;
import dev.lora4j.tokenizer.Tokenizer;
import java.nio.file.Files;
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

  /** The encoder of a model folder, or null when its tokenizer_config.json has no template. */
  public static ChatEncoder forFolder(Path dir, Tokenizer tokenizer) {
    Path cfg = dir.resolve("tokenizer_config.json");
    if (tokenizer == null || !Files.isRegularFile(cfg)) return null;
    try {
      return new TemplateChatEncoder(ChatTemplate.fromModelDir(dir), tokenizer);
    } catch (ChatTemplateException e) {
      if (e.getMessage() != null && e.getMessage().contains("no chat_template")) return null;
      throw e;
    }
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

  /** Prompt ids for generation: the conversation with the generation prompt added. */
  public int[] promptIds(List<ChatMessage> messages) {
    return template.encode(messages, true, tokenizer).ids();
  }
}
