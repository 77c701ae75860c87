package dev.lora4j.data;

import com.fasterxml.jackson.databind.JsonNode;
import java.util.List;

/**
 * The layouts of a JSONL training line. A dataset's format is detected from the keys of the first
 * valid line of the file (see {@link #detect}) unless set explicitly; every line of the file is
 * then read with that one format.
 */
public enum DataFormat {
  /** {@code {"text": ...}}: bos + text + eos, every token counts. */
  TEXT(List.of("text"), List.of()),
  /**
   * {@code {"prompt": ..., "completion": ...}}: bos + prompt + completion + eos; the prompt is
   * masked when training on completions.
   */
  PROMPT_COMPLETION(List.of("prompt", "completion"), List.of()),
  /**
   * {@code {"instruction": ..., "input": ... (optional), "output": ...}}: the Alpaca prompt (see
   * {@link AlpacaTemplate}) then output + eos; the prompt is masked when training on completions.
   */
  ALPACA(List.of("instruction", "output"), List.of("input")),
  /**
   * {@code {"messages": [{"role": ..., "content": ...}, ...]}} (or, as TRL reads ShareGPT's layout,
   * {@code {"conversations": [{"from": ..., "value": ...}, ...]}}): through the chat template; only
   * assistant contents and the eos closing each assistant turn count when training on completions.
   */
  CHAT(List.of("messages"), List.of()),
  /**
   * {@code {"input_ids": [...], "labels": [...] (optional)}}: used as given; labels default to the
   * input ids and may hold -100. Ids are checked against the vocabulary size when known. As TRL's
   * pre-tokenized rows, a line may carry {@code completion_mask} or {@code assistant_masks} (0 or 1
   * a token): training on completions only, the tokens they mark 0 do not count.
   */
  PRETOKENIZED(List.of("input_ids"), List.of("labels", "completion_mask", "assistant_masks"));

  private final List<String> requiredKeys;
  private final List<String> optionalKeys;

  DataFormat(List<String> requiredKeys, List<String> optionalKeys) {
    this.requiredKeys = requiredKeys;
    this.optionalKeys = optionalKeys;
  }

  /** The keys a line of this format must have. */
  public List<String> requiredKeys() {
    return requiredKeys;
  }

  /** The keys a line of this format may have. */
  /**
   * Whether TRL's SFTTrainer trains this format on completions only by default: prompt / completion
   * (and so Alpaca) lines yes ({@code completion_only_loss}), chat no ({@code assistant_only_loss}
   * false), and text and pre-tokenized rows have no prompt to mask.
   */
  public boolean completionsOnlyByDefault() {
    return this == PROMPT_COMPLETION || this == ALPACA;
  }

  public List<String> optionalKeys() {
    return optionalKeys;
  }

  /**
   * The format a JSON object is in, from its keys, tried in this order: "messages" (or
   * "conversations") is {@link #CHAT}; "input_ids" is {@link #PRETOKENIZED}; "instruction" and
   * "output" is {@link #ALPACA}; "prompt" and "completion" is {@link #PROMPT_COMPLETION}; "text" is
   * {@link #TEXT}. Other keys are ignored.
   *
   * @return the format, or null when the keys match none
   */
  public static DataFormat detect(JsonNode line) {
    if (line == null || !line.isObject()) return null;
    for (DataFormat f : List.of(CHAT, PRETOKENIZED, ALPACA, PROMPT_COMPLETION, TEXT)) {
      if (f.missingKey(line) == null) return f;
    }
    return null;
  }

  /**
   * The first key of this format that the line lacks, or null. A chat line's messages may be under
   * "conversations" instead (ShareGPT's layout, which TRL reads as "messages").
   */
  String missingKey(JsonNode line) {
    if (this == CHAT && line.has("conversations")) return null;
    for (String k : requiredKeys) if (!line.has(k)) return k;
    return null;
  }

  /** A one-line description of the keys of every format, for error messages. */
  static String describeAll() {
    StringBuilder sb = new StringBuilder();
    for (DataFormat f : values()) {
      if (sb.length() > 0) sb.append("; ");
      sb.append(f.name()).append(' ').append(f.requiredKeys);
    }
    return sb.toString();
  }
}
