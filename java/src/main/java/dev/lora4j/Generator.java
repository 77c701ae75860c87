package dev.lora4j;

import dev.lora4j.tokenizer.ChatMessage;
import dev.lora4j.tokenizer.TextStream;
import dev.lora4j.tokenizer.Tokenizer;
import java.util.Arrays;
import java.util.List;
import java.util.SplittableRandom;
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
  private Stats last;

  /**
   * The engine's time in the last {@link #generate(int[], GenerationConfig, IntConsumer)}: the
   * prompt's forward pass (its promptTokens through the KV cache, the first new token's logits back
   * on the host) and the decode steps after it (one per new token after the first, each one token's
   * forward pass and its logits). Sampling and the callbacks are not counted.
   */
  public record Stats(int promptTokens, long prefillNanos, int decodeSteps, long decodeNanos) {
    /** Prompt tokens per second of the prompt's pass. */
    public double prefillTokensPerSecond() {
      return promptTokens / (prefillNanos / 1e9);
    }

    /** Decode steps (new tokens) per second; NaN without a decode step. */
    public double decodeTokensPerSecond() {
      return decodeSteps == 0 ? Double.NaN : decodeSteps / (decodeNanos / 1e9);
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
    Tokenizer t = requireTokenizer();
    int[] ids = promptIds(prompt, cfg);
    if (onText == null) return t.decode(generate(ids, cfg, null), true); // nothing to stream
    TextStream stream = new TextStream(t, true);
    generate(
        ids,
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
    if (promptIds.length + cfg.maxNewTokens() > model.maxSeqLength()) {
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
    SplittableRandom rng = new SplittableRandom(cfg.seed());
    int[] out = new int[cfg.maxNewTokens()];
    int n = 0;
    last = null;
    if (cfg.maxNewTokens() == 0) return out;
    long t0 = System.nanoTime();
    float[] logits = model.engine().decodeStart(promptIds);
    long prefill = System.nanoTime() - t0, decode = 0;
    int steps = 0;
    if (cfg.temperature() == 0) {
      // Greedy: the core takes each step's argmax and appends it (decodeGreedy), so the logits do
      // not cross to Java; in chunks that start at one token and double while a chunk takes under
      // 25 ms (up to 16), so that text still streams at least every ~50 ms on a slow device.
      int tok = argmax(logits);
      out[n++] = tok;
      if (onToken != null) onToken.accept(tok);
      int chunk = 1;
      while (tok != eos && n < cfg.maxNewTokens()) {
        long t = System.nanoTime();
        int[] got = model.engine().decodeGreedy(tok, Math.min(chunk, cfg.maxNewTokens() - n), eos);
        long took = System.nanoTime() - t;
        decode += took;
        steps += got.length;
        for (int g : got) {
          out[n++] = g;
          if (onToken != null) onToken.accept(g);
        }
        tok = got[got.length - 1];
        if (took < 25_000_000L) chunk = Math.min(2 * chunk, 16);
      }
    } else {
      while (true) {
        int tok = sample(logits, cfg, rng);
        out[n++] = tok;
        if (onToken != null) onToken.accept(tok);
        if (tok == eos || n == cfg.maxNewTokens()) break;
        long t = System.nanoTime();
        logits = model.engine().decodeNext(tok);
        decode += System.nanoTime() - t;
        steps++;
      }
    }
    last = new Stats(promptIds.length, prefill, steps, decode);
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

  /**
   * The indices of v by descending value in Float.compare's order (NaN, +inf, ..., 0.0, -0.0, ...,
   * -inf), equal values by ascending index: the order a stable sort of 0..n-1 by that comparison
   * gives. A least-significant-digit radix sort (four stable passes of 8 bits) over the value's
   * bits made to sort as an unsigned int: 0.3 ms a call at 32000 entries once compiled, against 5.4
   * ms for a comparator over boxed indices and 1.7 ms for a sort of primitive keys (build machine).
   */
  static int[] descendingOrder(float[] v) {
    int n = v.length;
    int[] key = new int[n], idx = new int[n], key2 = new int[n], idx2 = new int[n];
    for (int i = 0; i < n; i++) {
      int b = Float.floatToIntBits(v[i]); // NaN canonical: above +inf, as Float.compare has it
      int ascending = b ^ ((b >> 31) & 0x7fffffff); // signed order = Float.compare's order
      key[i] = ~ascending ^ 0x80000000; // unsigned order = descending
      idx[i] = i;
    }
    int[] start = new int[257];
    for (int shift = 0; shift < 32; shift += 8) {
      Arrays.fill(start, 0);
      for (int i = 0; i < n; i++) start[((key[i] >>> shift) & 0xff) + 1]++;
      for (int d = 0; d < 256; d++) start[d + 1] += start[d];
      for (int i = 0; i < n; i++) {
        int at = start[(key[i] >>> shift) & 0xff]++;
        key2[at] = key[i];
        idx2[at] = idx[i];
      }
      int[] t = key;
      key = key2;
      key2 = t;
      t = idx;
      idx = idx2;
      idx2 = t;
    }
    return idx;
  }

  /**
   * The first k entries of {@link #descendingOrder}(v), found without ordering the rest: each index
   * i becomes one long whose order is that order (the value's bits made to sort descending as a
   * signed int in the high half, i in the low half), the k smallest of them kept in a max-heap over
   * one pass, then sorted. For top-k sampling: 32000 logits and k 50 take ~0.05 ms here against the
   * full order's ~0.3 (build machine), with the same indices.
   */
  static int[] topOrder(float[] v, int k) {
    int n = v.length;
    k = Math.min(k, n);
    if (k <= 0) return new int[0];
    long[] heap = new long[k]; // max-heap of the k smallest seen
    for (int i = 0; i < n; i++) {
      long c = orderKey(v[i], i);
      if (i < k) {
        int at = i; // sift up
        while (at > 0) {
          int up = (at - 1) >> 1;
          if (heap[up] >= c) break;
          heap[at] = heap[up];
          at = up;
        }
        heap[at] = c;
      } else if (c < heap[0]) {
        int at = 0; // replace the largest, sift down
        while (true) {
          int l = 2 * at + 1;
          if (l >= k) break;
          int big = l + 1 < k && heap[l + 1] > heap[l] ? l + 1 : l;
          if (heap[big] <= c) break;
          heap[at] = heap[big];
          at = big;
        }
        heap[at] = c;
      }
    }
    Arrays.sort(heap);
    int[] idx = new int[k];
    for (int j = 0; j < k; j++) idx[j] = (int) heap[j];
    return idx;
  }

  /** Index i of value x as one long: ascending longs = descendingOrder's order (see there). */
  private static long orderKey(float x, int i) {
    int b = Float.floatToIntBits(x);
    int ascending = b ^ ((b >> 31) & 0x7fffffff);
    return ((long) ~ascending << 32) | (i & 0xffffffffL);
  }

  /** Temperature, then top-k, then top-p over the softmax, then one draw. */
  static int sample(float[] logits, GenerationConfig cfg, SplittableRandom rng) {
    int v = logits.length;
    int keep = cfg.topK() > 0 ? Math.min(cfg.topK(), v) : v;
    // only the kept prefix of the order is read: with a top-k of at most an eighth of the
    // vocabulary, found by selection (topOrder, the same indices) instead of ordering every logit
    return draw(logits, keep <= v / 8 ? topOrder(logits, keep) : descendingOrder(logits), cfg, rng);
  }

  /** sample's draw over idx, the logits' descending order (at least its first top-k entries). */
  static int draw(float[] logits, int[] idx, GenerationConfig cfg, SplittableRandom rng) {
    int v = logits.length;
    int keep = cfg.topK() > 0 ? Math.min(cfg.topK(), v) : v;
    double max = logits[idx[0]];
    double[] p = new double[keep];
    double z = 0;
    for (int i = 0; i < keep; i++) {
      p[i] = Math.exp((logits[idx[i]] - max) / cfg.temperature());
      z += p[i];
    }
    double cum = 0;
    int cut = keep;
    for (int i = 0; i < keep; i++) {
      p[i] /= z;
      cum += p[i];
      if (cum >= cfg.topP()) {
        cut = i + 1;
        break;
      }
    }
    double total = 0;
    for (int i = 0; i < cut; i++) total += p[i];
    double u = rng.nextDouble() * total;
    for (int i = 0; i < cut; i++) {
      u -= p[i];
      if (u <= 0) return idx[i];
    }
    return idx[cut - 1];
  }
}
