package dev.lora4j;

/**
 * How to generate: greedy when temperature is 0, else sampling with temperature, top-k and top-p
 * (nucleus) from a seeded generator. Stops at the end-of-sequence token or after maxNewTokens.
 *
 * @param maxNewTokens most tokens to produce
 * @param temperature 0 for greedy
 * @param topK keep the k most likely tokens (0: all)
 * @param topP keep the smallest set whose probability reaches p (1: all)
 * @param seed sampling seed
 * @param maxPromptChars prompts longer than this are refused
 */
public record GenerationConfig(
    int maxNewTokens, double temperature, int topK, double topP, long seed, int maxPromptChars) {
  public GenerationConfig {
    if (maxNewTokens < 0) throw new IllegalArgumentException("maxNewTokens must be >= 0");
    if (!(temperature >= 0)) throw new IllegalArgumentException("temperature must be >= 0");
    if (topK < 0) throw new IllegalArgumentException("topK must be >= 0");
    if (!(topP > 0 && topP <= 1)) throw new IllegalArgumentException("topP must be in (0, 1]");
    if (maxPromptChars < 1) throw new IllegalArgumentException("maxPromptChars must be >= 1");
  }

  /** Greedy, 128 new tokens, prompts up to 32768 characters. */
  public static GenerationConfig greedy() {
    return new GenerationConfig(128, 0, 0, 1, 0, 32768);
  }

  /** Sampling at the given temperature, top-p 0.9. */
  public static GenerationConfig sampling(double temperature, long seed) {
    return new GenerationConfig(128, temperature, 0, 0.9, seed, 32768);
  }

  public GenerationConfig withMaxNewTokens(int n) {
    return new GenerationConfig(n, temperature, topK, topP, seed, maxPromptChars);
  }

  public GenerationConfig withTopK(int k) {
    return new GenerationConfig(maxNewTokens, temperature, k, topP, seed, maxPromptChars);
  }

  public GenerationConfig withTopP(double p) {
    return new GenerationConfig(maxNewTokens, temperature, topK, p, seed, maxPromptChars);
  }

  public GenerationConfig withTemperature(double t) {
    return new GenerationConfig(maxNewTokens, t, topK, topP, seed, maxPromptChars);
  }

  public GenerationConfig withSeed(long s) {
    return new GenerationConfig(maxNewTokens, temperature, topK, topP, s, maxPromptChars);
  }

  public GenerationConfig withMaxPromptChars(int n) {
    return new GenerationConfig(maxNewTokens, temperature, topK, topP, seed, n);
  }
}
