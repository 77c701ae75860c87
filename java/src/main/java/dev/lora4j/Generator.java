package dev.lora4j;

import dev.lora4j.nativ.NativeEngine;
import dev.lora4j.tokenizer.ChatMessage;
import dev.lora4j.tokenizer.TextStream;
import dev.lora4j.tokenizer.Tokenizer;
import java.util.Arrays;
import java.util.List;
import java.util.function.IntConsumer;

/**
 * Text generation with the model as it is (with its adapter, when attached), one token at a time
 * through the engine's KV cache.
 *
 * <p>Prompts are sanitized: control characters other than newline and tab are removed, the length
 * is limited, and the text is tokenized literally, so {@code <s>}, {@code </s>} or {@code [INST]}
 * typed in a prompt never become control tokens. Control tokens come only from the chat template
 * ({@link #chatPromptIds}) or from the BOS the generator adds.
 */
public final class Generator {
  private final MistralModel model;

  /** The ids that end a generation ({@link #stopIds}), read at the first generation. */
  private java.util.Set<Integer> stops;

  private Stats last;

  /**
   * The engine's time in the last {@link #generate(int[], GenerationConfig, IntConsumer)}: the
   * prompt's forward pass (its promptTokens through the KV cache, the first new token's logits back
   * on the host) and the decode steps after it (one per new token after the first, each one token's
   * forward pass and the core's choice of the next token: the argmax, or a draw when sampling); the
   * first token's choice and the callbacks are not counted there. tokens new tokens in totalNanos
   * all told: from the call's start to its last token, the callbacks (a streaming caller's output)
   * included.
   */
  public record Stats(
      int promptTokens,
      long prefillNanos,
      int decodeSteps,
      long decodeNanos,
      int tokens,
      long totalNanos) {
    /** Prompt tokens per second of the prompt's pass. */
    public double prefillTokensPerSecond() {
      return promptTokens / (prefillNanos / 1e9);
    }

    /** Decode steps (new tokens) per second; NaN without a decode step. */
    public double decodeTokensPerSecond() {
      return decodeSteps == 0 ? Double.NaN : decodeSteps / (decodeNanos / 1e9);
    }

    /** New tokens per second all told (the prompt's pass, the steps, sampling, the callbacks). */
    public double tokensPerSecond() {
      return tokens / (totalNanos / 1e9);
    }
  }

  public Generator(MistralModel model) {
    this.model = model;
  }

  /** Removes control characters other than newline and tab; refuses over-long prompts. */
  public static String sanitize(String prompt, int maxChars) {
    if (prompt == null) throw new IllegalArgumentException("prompt is null");
    StringBuilder sb = new StringBuilder(prompt.length());
    prompt
        .codePoints()
        .filter(
            c ->
                c == '\n'
                    || c == '\t'
                    || !(Character.getType(c) == Character.CONTROL
                        || Character.getType(c) == Character.FORMAT && c != 0x200D))
        .forEach(sb::appendCodePoint);
    if (sb.length() > maxChars) {
      throw new IllegalArgumentException(
          "prompt has " + sb.length() + " characters, more than the limit " + maxChars);
    }
    return sb.toString();
  }

  /** Token ids of a plain-text prompt: BOS + the sanitized text tokenized literally. */
  public int[] promptIds(String prompt, GenerationConfig cfg) {
    Tokenizer t = requireTokenizer();
    return t.encode(sanitize(prompt, cfg.maxPromptChars()), true);
  }

  /**
   * Generates from a plain-text prompt; returns the decoded new text. onText (nullable) gets the
   * text as it is produced, in pieces that join to the returned text ({@link TextStream}).
   */
  public String generate(
      String prompt, GenerationConfig cfg, java.util.function.Consumer<String> onText) {
    return generateText(promptIds(prompt, cfg), cfg, onText);
  }

  /**
   * Generates after promptIds (from {@link #promptIds} or {@link #chatPromptIds}); returns the
   * decoded new text (special tokens skipped). onText (nullable) gets the text as it is produced,
   * in pieces that join to the returned text ({@link TextStream}).
   */
  public String generateText(
      int[] promptIds, GenerationConfig cfg, java.util.function.Consumer<String> onText) {
    Tokenizer t = requireTokenizer();
    if (onText == null) return t.decode(generate(promptIds, cfg, null), true); // nothing to stream
    TextStream stream = new TextStream(t, true);
    generate(
        promptIds,
        cfg,
        tok -> {
          String piece = stream.push(tok);
          if (!piece.isEmpty()) onText.accept(piece);
        });
    String rest = stream.flush();
    if (!rest.isEmpty()) onText.accept(rest);
    return t.decode(stream.ids(), true);
  }

  /**
   * Generates token ids after the prompt ids, calling onToken for each as it is produced; stops
   * after the end-of-sequence token (included) or maxNewTokens.
   */
  public int[] generate(int[] promptIds, GenerationConfig cfg, IntConsumer onToken) {
    if (promptIds.length == 0) throw new IllegalArgumentException("prompt is empty");
    if ((long) promptIds.length + cfg.maxNewTokens() > model.maxSeqLength()) {
      throw new IllegalArgumentException(
          "prompt ("
              + promptIds.length
              + " tokens) + "
              + cfg.maxNewTokens()
              + " new tokens exceed the model's "
              + model.maxSeqLength()
              + " positions");
    }
    int eos = eosId();
    if (stops == null) stops = stopIds(eos); // generation_config.json read once a generator
    int[] out = new int[cfg.maxNewTokens()];
    int n = 0;
    last = null;
    if (cfg.maxNewTokens() == 0) return out;
    long t0 = System.nanoTime();
    float[] logits = model.engine().decodeStart(promptIds);
    long prefill = System.nanoTime() - t0, decode = 0;
    int steps = 0;
    // The first token from the prompt's logits; then the core appends each token, takes the next
    // (the argmax, or a draw as Sampler draws it from the generator's state, which the core
    // carries on) and appends it (decodeGreedy / decodeSample), so the logits do not cross to Java;
    // in chunks that start at one token and double while a chunk takes under 25 ms (up to 16), so
    // that text still streams at least every ~50 ms on a slow device.
    NativeEngine engine = model.engine();
    boolean greedy = cfg.temperature() == 0;
    SplitMix64 rng = new SplitMix64(cfg.seed());
    int tok = greedy ? argmax(logits) : Sampler.sample(logits, cfg, rng);
    out[n++] = tok;
    if (onToken != null) onToken.accept(tok);
    int chunk = 1;
    while (!stops.contains(tok) && n < cfg.maxNewTokens()) {
      int count = Math.min(chunk, cfg.maxNewTokens() - n);
      long t = System.nanoTime();
      int[] got =
          greedy
              ? engine.decodeGreedy(tok, count, eos)
              : engine.decodeSample(
                  tok, count, eos, cfg.temperature(), cfg.topK(), cfg.topP(), rng);
      long took = System.nanoTime() - t;
      decode += took;
      steps += got.length;
      // the core stops at eos; another end id of generation_config.json ends the text here (the
      // core's few tokens past it are dropped)
      for (int g : got) {
        out[n++] = g;
        if (onToken != null) onToken.accept(g);
        tok = g;
        if (stops.contains(g)) break;
      }
      if (took < 25_000_000L) chunk = Math.min(2 * chunk, 16);
    }
    last = new Stats(promptIds.length, prefill, steps, decode, n, System.nanoTime() - t0);
    return Arrays.copyOf(out, n);
  }

  /** The engine's time in the last generation (null before one, or after one of 0 tokens). */
  public Stats lastStats() {
    return last;
  }

  /**
   * Token ids of a chat prompt: the sanitized user message rendered with the model's chat template
   * and the generation prompt; its content tokenized literally.
   */
  public int[] chatPromptIds(String userMessage, GenerationConfig cfg) {
    return chatPromptIds(List.of(ChatMessage.user(sanitize(userMessage, cfg.maxPromptChars()))));
  }

  /** Token ids of a conversation rendered with the chat template and the generation prompt. */
  public int[] chatPromptIds(List<ChatMessage> messages) {
    if (model.tokenizer() == null) {
      throw new Lora4jException(
          "model folder "
              + model.directory()
              + " has no tokenizer.json: a chat prompt needs the"
              + " model's tokenizer and chat template");
    }
    if (!(model.chatEncoder() instanceof dev.lora4j.data.TemplateChatEncoder t)) {
      throw new Lora4jException(
          "model folder "
              + model.directory()
              + " has no chat template (no chat_template in its"
              + " tokenizer_config.json)");
    }
    return t.promptIds(messages);
  }

  /**
   * The ids that end a generation, as Hugging Face's generate takes them: eos, and every id of
   * eos_token_id in the model folder's generation_config.json (a number or a list).
   */
  java.util.Set<Integer> stopIds(int eos) {
    java.util.Set<Integer> ids = new java.util.HashSet<>();
    if (eos >= 0) ids.add(eos);
    java.nio.file.Path gen = model.directory().resolve("generation_config.json");
    if (!java.nio.file.Files.isRegularFile(gen)) return ids;
    com.fasterxml.jackson.databind.JsonNode e;
    try {
      e =
          new com.fasterxml.jackson.databind.ObjectMapper()
              .readTree(gen.toFile())
              .get("eos_token_id");
    } catch (java.io.IOException ex) {
      throw new Lora4jException(gen + ": not readable JSON: " + ex.getMessage(), ex);
    }
    if (e == null || e.isNull()) return ids;
    for (com.fasterxml.jackson.databind.JsonNode v : e.isArray() ? e : List.of(e)) {
      if (!v.canConvertToInt() || !v.isIntegralNumber() || v.intValue() < 0) {
        throw new Lora4jException(
            gen + ": key 'eos_token_id' must be a token id or a list of them, found " + e);
      }
      ids.add(v.intValue());
    }
    return ids;
  }

  int eosId() {
    Tokenizer t = model.tokenizer();
    if (t != null) return t.eosId();
    Integer e = model.config().eosTokenId();
    return e == null ? -1 : e;
  }

  private Tokenizer requireTokenizer() {
    Tokenizer t = model.tokenizer();
    if (t == null) {
      throw new Lora4jException("model folder " + model.directory() + " has no tokenizer.json");
    }
    return t;
  }

  static int argmax(float[] v) {
    int best = 0;
    for (int i = 1; i < v.length; i++) if (v[i] > v[best]) best = i;
    return best;
  }
}
