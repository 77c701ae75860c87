package dev.lora4j.data;

import com.fasterxml.jackson.databind.JsonNode;
import dev.lora4j.Lora4jException;
import dev.lora4j.tokenizer.ChatMessage;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * Turns one parsed JSONL line of a known format into a {@link TokenizedExample}. Problems with the
 * line are {@link BadLine}s, without location: the reader adds file and line.
 */
final class LineEncoder {
  /** A problem with one line; the message says what, the reader says where. */
  static final class BadLine extends Exception {
    private static final long serialVersionUID = 1L;

    BadLine(String message) {
      super(message, null, false, false);
    }
  }

  /**
   * A line's example, and a note on it (null: none): the prompt's tokens alone not a prefix of the
   * whole text's, where TRL warns of a mismatch.
   */
  record Encoded(TokenizedExample example, String note) {}

  private final TextEncoder text;
  private final ChatEncoder chat;
  private final boolean completionsOnly;

  LineEncoder(TextEncoder text, ChatEncoder chat, boolean completionsOnly) {
    this.text = text;
    this.chat = chat;
    this.completionsOnly = completionsOnly;
  }

  /**
   * Whether lines may be encoded on several threads at once: the built-in encoders keep no state
   * between lines (a {@link dev.lora4j.tokenizer.Tokenizer} is thread-safe, a chat template renders
   * each conversation afresh); an encoder of the caller's own is used from one thread.
   */
  boolean threadSafe() {
    return text instanceof TokenizerTextEncoder
        && (chat == null || chat instanceof TemplateChatEncoder);
  }

  Encoded encode(JsonNode line, DataFormat format, String source) throws BadLine {
    if (!line.isObject()) {
      throw new BadLine("expected a JSON object, got " + kind(line));
    }
    // What the model lacks fails every line of the format alike: an error that stops the run,
    // not a bad line that --skip-invalid would count and drop (every line of the file).
    String why = text.unavailableReason();
    if (format == DataFormat.CHAT && chat == null) throw noChatEncoder("chat", source);
    if (format != DataFormat.PRETOKENIZED && format != DataFormat.CHAT && why != null) {
      throw new Lora4jException(
          why
              + " ("
              + format.name().toLowerCase(java.util.Locale.ROOT)
              + " data at "
              + source
              + ")");
    }
    nearMisses(line, format);
    return switch (format) {
      case TEXT -> new Encoded(textExample(string(line, "text", true), source), null);
      case PROMPT_COMPLETION ->
          line.path("prompt").isArray()
              ? new Encoded(conversationalCompletion(line, source), null)
              : promptCompletion(
                  string(line, "prompt", true), string(line, "completion", true), source);
      case ALPACA ->
          promptCompletion(
              AlpacaTemplate.prompt(
                  string(line, "instruction", true), string(line, "input", false)),
              string(line, "output", true),
              source);
      case CHAT -> new Encoded(chatExample(line, source), null);
      case PRETOKENIZED -> new Encoded(pretokenized(line, source), null);
    };
  }

  private TokenizedExample textExample(String s, String source) {
    int[] ids = append(text.encodeText(s, true), text.eosId());
    return new TokenizedExample(ids, ids.clone(), source);
  }

  /**
   * As TRL: tokenize prompt + completion as one text (so the boundary tokenizes as it would in
   * running text), tokenize the prompt alone, and mask as many leading positions as the prompt
   * alone has tokens. Then the eos, which counts.
   */
  private Encoded promptCompletion(String prompt, String completion, String source) {
    int[] ids = append(text.encodeText(prompt + completion, true), text.eosId());
    int[] labels = ids.clone();
    String note = null;
    if (completionsOnly) {
      int[] alone = text.encodeText(prompt, true);
      int promptLen = Math.min(alone.length, ids.length);
      Arrays.fill(labels, 0, promptLen, TokenizedExample.IGNORE);
      // As TRL warns ("Mismatch between tokenized prompt and the start of tokenized
      // prompt+completion"): where the prompt's last tokens merge with the completion's first
      // (a prompt ending in a space), the mask also covers the start of the completion.
      int first = Arrays.mismatch(alone, 0, promptLen, ids, 0, promptLen);
      if (first >= 0) {
        note =
            "the prompt's tokens alone differ from the start of prompt + completion at token "
                + first
                + " of "
                + alone.length
                + ", so the mask of the prompt's length also covers "
                + (promptLen - first)
                + " token(s) where the completion begins (a prompt that ends in a space merges"
                + " it with the completion's first word; TRL masks alike and warns)";
      }
    }
    return new Encoded(new TokenizedExample(ids, labels, source), note);
  }

  /**
   * The messages of a line's array under key. ShareGPT's layout as TRL reads it
   * (maybe_convert_to_chatml): "from" for "role", "value" for "content" in each message.
   */
  private static List<ChatMessage> messages(JsonNode msgs, String key) throws BadLine {
    if (!msgs.isArray())
      throw new BadLine("field '" + key + "' must be an array, got " + kind(msgs));
    if (msgs.isEmpty()) throw new BadLine("field '" + key + "' is empty");
    List<ChatMessage> messages = new ArrayList<>(msgs.size());
    for (int i = 0; i < msgs.size(); i++) {
      JsonNode m = msgs.get(i);
      String where = key + "[" + i + "]";
      if (!m.isObject()) throw new BadLine(where + " must be an object, got " + kind(m));
      String rk = m.has("role") || !m.has("from") ? "role" : "from";
      String ck = m.has("content") || !m.has("value") ? "content" : "value";
      String role = string(m, rk, true, where + "." + rk);
      String content = string(m, ck, true, where + "." + ck);
      if (!ChatMessage.ROLES.contains(role)) {
        throw new BadLine(
            where + " has unknown role '" + role + "' (expected system, user or assistant)");
      }
      messages.add(new ChatMessage(role, content));
    }
    return messages;
  }

  private TokenizedExample chatExample(JsonNode line, String source) throws BadLine {
    String key = line.has("messages") ? "messages" : "conversations";
    List<ChatMessage> messages = messages(line.get(key), key);
    return rendered(() -> chat.encode(messages, completionsOnly, source), source);
  }

  /**
   * TRL's conversational prompt / completion: {"prompt": [messages], "completion": [messages]},
   * rendered whole through the chat template; with completions only, the completion's messages
   * count (TRL masks the whole prompt, assistant turns in it included).
   */
  private TokenizedExample conversationalCompletion(JsonNode line, String source) throws BadLine {
    if (chat == null) throw noChatEncoder("conversational prompt / completion", source);
    List<ChatMessage> prompt = messages(line.get("prompt"), "prompt");
    JsonNode c = line.get("completion");
    if (!c.isArray()) {
      throw new BadLine(
          "field 'completion' must be an array of messages, as 'prompt' is, got " + kind(c));
    }
    List<ChatMessage> completion = messages(c, "completion");
    return rendered(
        () -> chat.encodeCompletion(prompt, completion, completionsOnly, source), source);
  }

  /**
   * Data that needs a chat encoder (whose template tokenizes) on a model without one: why it is
   * absent, an error that stops the pass (every line of the kind fails alike).
   */
  private Lora4jException noChatEncoder(String data, String source) {
    String why = text.unavailableReason();
    return new Lora4jException(
        why != null
            ? why + " (" + data + " data at " + source + ")"
            : data
                + " data at "
                + source
                + " but the model has no chat template (no chat_template in its"
                + " tokenizer_config.json)");
  }

  /** A conversation through the chat template: what the template refuses is a bad line. */
  private TokenizedExample rendered(
      java.util.function.Supplier<TokenizedExample> encoding, String source) throws BadLine {
    TokenizedExample e;
    try {
      e = encoding.get();
    } catch (DataException ex) {
      throw ex;
    } catch (dev.lora4j.tokenizer.ChatTemplateException ex) {
      if (!(ex instanceof dev.lora4j.tokenizer.ChatTemplateException.Raised)) {
        // the template uses what lora4j's Jinja does not run (a filter, a method): not the
        // line's fault, and skipping would drop every line that reaches it without a word
        throw new DataException(
            source
                + ": the model's chat template cannot be rendered for this conversation: "
                + ex.getMessage()
                + " (a construct of the template that lora4j's Jinja does not run; the line is"
                + " not at fault)");
      }
      // the template refused the conversation (roles that do not alternate, ...): a bad line,
      // skipped and counted with skipInvalid
      throw new BadLine("chat template rejected the conversation: " + ex.getMessage());
    } catch (dev.lora4j.Lora4jException ex) {
      throw new BadLine("chat template rejected the conversation: " + ex.getMessage());
    }
    return e;
  }

  private TokenizedExample pretokenized(JsonNode line, String source) throws BadLine {
    int[] ids = intArray(line.get("input_ids"), "input_ids", false);
    if (ids.length == 0) throw new BadLine("field 'input_ids' is empty");
    JsonNode l = line.get("labels");
    int[] labels = null;
    if (l != null && !l.isNull()) {
      labels = intArray(l, "labels", true);
      if (labels.length != ids.length) {
        throw new BadLine(
            "field 'labels' has " + labels.length + " values but 'input_ids' has " + ids.length);
      }
    }
    // TRL's mask columns (its completion_only_loss / assistant_only_loss): with completions
    // only, a token marked 0 does not count; without, they are ignored, as TRL ignores them then
    for (String key : List.of("completion_mask", "assistant_masks")) {
      JsonNode m = line.get(key);
      if (m == null || m.isNull()) continue;
      if (!m.isArray()) throw new BadLine("field '" + key + "' must be an array of 0 and 1");
      if (m.size() != ids.length) {
        throw new BadLine(
            "field '" + key + "' has " + m.size() + " values but 'input_ids' has " + ids.length);
      }
      for (int i = 0; i < ids.length; i++) {
        JsonNode v = m.get(i);
        if (!v.isIntegralNumber() || (v.asLong() != 0 && v.asLong() != 1)) {
          throw new BadLine(key + "[" + i + "] must be 0 or 1, got " + v);
        }
        if (completionsOnly && v.asLong() == 0) {
          if (labels == null) labels = ids.clone();
          labels[i] = TokenizedExample.IGNORE;
        }
      }
    }
    return new TokenizedExample(ids, labels, source);
  }

  private int[] intArray(JsonNode a, String field, boolean allowIgnore) throws BadLine {
    if (!a.isArray())
      throw new BadLine("field '" + field + "' must be an array of integers, got " + kind(a));
    int vocab = text.vocabSize();
    int[] out = new int[a.size()];
    for (int i = 0; i < out.length; i++) {
      JsonNode v = a.get(i);
      if (!v.isIntegralNumber() || !v.canConvertToInt()) {
        throw new BadLine(field + "[" + i + "] must be an integer, got " + v);
      }
      int x = v.intValue();
      if (!(allowIgnore && x == TokenizedExample.IGNORE) && (x < 0 || (vocab > 0 && x >= vocab))) {
        throw new BadLine(
            field
                + "["
                + i
                + "] = "
                + x
                + " is not a token id"
                + (vocab > 0 ? " (vocabulary size " + vocab + ")" : " (negative)"));
      }
      out[i] = x;
    }
    return out;
  }

  private static String string(JsonNode obj, String field, boolean required) throws BadLine {
    return string(obj, field, required, field);
  }

  private static String string(JsonNode obj, String field, boolean required, String name)
      throws BadLine {
    JsonNode v = obj.get(field);
    if (v == null || v.isNull()) {
      if (required) throw new BadLine("missing field '" + name + "'");
      return null;
    }
    if (!v.isTextual()) throw new BadLine("field '" + name + "' must be a string, got " + kind(v));
    String t = v.textValue();
    // a \\uD800-style escape without its pair is no character (it would be encoded as '?')
    for (int i = 0; i < t.length(); i++) {
      char c = t.charAt(i);
      if (Character.isHighSurrogate(c)
          && i + 1 < t.length()
          && Character.isLowSurrogate(t.charAt(i + 1))) {
        i++;
      } else if (Character.isSurrogate(c)) {
        throw new BadLine(
            String.format(
                "field '%s' holds an unpaired UTF-16 surrogate (\\u%04X) at character %d: not text",
                name, (int) c, i));
      }
    }
    return t;
  }

  /**
   * Refuses a key one letter or a plural away from an optional key of the format (or differing only
   * in case), which would otherwise be ignored as an unknown key without a word: "label" for
   * "labels" drops the -100 masking, "inputs" for "input" the Alpaca input. Other unknown keys
   * (ids, sources, metadata) are ignored.
   */
  private static void nearMisses(JsonNode line, DataFormat format) throws BadLine {
    for (java.util.Iterator<String> it = line.fieldNames(); it.hasNext(); ) {
      String k = it.next();
      if (format.requiredKeys().contains(k) || format.optionalKeys().contains(k)) continue;
      for (String want : format.optionalKeys()) {
        if (near(k, want)) {
          throw new BadLine(
              "unknown key '"
                  + k
                  + "': did you mean '"
                  + want
                  + "'? (the "
                  + format.name().toLowerCase(java.util.Locale.ROOT)
                  + " format's optional key; an unknown key is otherwise ignored)");
        }
      }
    }
  }

  /** Equal but for case, or one edit apart (a letter added, dropped or changed). */
  static boolean near(String a, String b) {
    if (a.equalsIgnoreCase(b)) return true;
    a = a.toLowerCase(java.util.Locale.ROOT);
    b = b.toLowerCase(java.util.Locale.ROOT);
    if (Math.abs(a.length() - b.length()) > 1 || Math.min(a.length(), b.length()) < 3) return false;
    int i = 0, j = 0, edits = 0;
    while (i < a.length() && j < b.length()) {
      if (a.charAt(i) == b.charAt(j)) {
        i++;
        j++;
        continue;
      }
      if (++edits > 1) return false;
      if (a.length() > b.length()) i++;
      else if (a.length() < b.length()) j++;
      else {
        i++;
        j++;
      }
    }
    return edits + (a.length() - i) + (b.length() - j) <= 1;
  }

  static String kind(JsonNode v) {
    return switch (v.getNodeType()) {
      case ARRAY -> "an array";
      case OBJECT -> "an object";
      case NUMBER -> "a number";
      case BOOLEAN -> "a boolean";
      case NULL -> "null";
      case STRING -> "a string";
      default -> v.getNodeType().toString().toLowerCase();
    };
  }

  private static int[] append(int[] a, int x) {
    int[] r = Arrays.copyOf(a, a.length + 1);
    r[a.length] = x;
    return r;
  }
}
