package dev.lora4j;

import static org.junit.jupiter.api.Assertions.*;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;

/** Generation through the KV cache: greedy, sampling, streaming, stopping. */
class GenerationTest {
  static final Path REF = Path.of("src/test/resources/hf-reference/tiny");
  static final int[] PROMPT = {1, 17, 243, 99, 5, 300};

  @Test
  void javaLoopGreedyEqualsNativeGreedyAndStreams() {
    try (MistralModel m = MistralModel.load(REF.resolve("model"), Device.cpu())) {
      m.attachAdapter(REF.resolve("adapter_trained"));
      int[] nat = m.generateGreedy(PROMPT, 12, -1);
      List<Integer> streamed = new ArrayList<>();
      int[] got =
          new Generator(m)
              .generate(PROMPT, GenerationConfig.greedy().withMaxNewTokens(12), streamed::add);
      assertArrayEquals(nat, got);
      assertEquals(12, streamed.size());
      // Stops after the end-of-sequence token.
      int[] stop = m.generateGreedy(PROMPT, 12, nat[2]);
      assertEquals(3, stop.length);
    }
  }

  @Test
  void greedyInChunksEqualsStepByStepArgmax() {
    // Generator's greedy path asks the core for chunks of tokens (decodeGreedy); the same tokens
    // as decodeNext and the argmax of each logits, one step at a time, also when the
    // end-of-sequence token falls inside a chunk
    try (MistralModel m = MistralModel.load(REF.resolve("model"), Device.cpu())) {
      m.attachAdapter(REF.resolve("adapter_trained"));
      int[] want = new int[40];
      float[] logits = m.engine().decodeStart(PROMPT);
      for (int k = 0; k < want.length; k++) {
        want[k] = Generator.argmax(logits);
        if (k + 1 < want.length) logits = m.engine().decodeNext(want[k]);
      }
      List<Integer> streamed = new ArrayList<>();
      Generator g = new Generator(m);
      int[] got = g.generate(PROMPT, GenerationConfig.greedy().withMaxNewTokens(40), streamed::add);
      assertArrayEquals(want, got);
      assertEquals(40, streamed.size());
      assertEquals(39, g.lastStats().decodeSteps());
      // one call of 39 that meets the end-of-sequence token at its first occurrence after want[0]
      int eos = want[21], at = 1;
      while (want[at] != eos) at++;
      m.engine().decodeStart(PROMPT);
      int[] chunk = m.engine().decodeGreedy(want[0], 39, eos);
      assertArrayEquals(java.util.Arrays.copyOfRange(want, 1, at + 1), chunk);
    }
  }

  @Test
  void streamedTextJoinsToTheReturnedText() {
    // the shipped small model's random weights give random tokens, byte tokens among them
    try (MistralModel m =
        MistralModel.load(Path.of("../examples/models/tiny-mistral"), Device.cpu())) {
      Generator g = new Generator(m);
      for (long seed = 1; seed <= 4; seed++) {
        List<String> pieces = new ArrayList<>();
        String text =
            g.generate(
                "The lighthouse keeper",
                GenerationConfig.sampling(1.0, seed).withMaxNewTokens(80),
                pieces::add);
        assertFalse(text.isEmpty());
        assertEquals(text, String.join("", pieces), "seed " + seed);
        assertTrue(pieces.stream().noneMatch(String::isEmpty), "no empty piece is passed on");
        assertEquals(
            text,
            g.generate(
                "The lighthouse keeper",
                GenerationConfig.sampling(1.0, seed).withMaxNewTokens(80),
                null));
      }
    }
  }

  @Test
  void statsCountThePromptAndEachDecodeStep() {
    try (MistralModel m = MistralModel.load(REF.resolve("model"), Device.cpu())) {
      Generator g = new Generator(m);
      assertNull(g.lastStats());
      int[] got = g.generate(PROMPT, GenerationConfig.greedy().withMaxNewTokens(12), null);
      Generator.Stats st = g.lastStats();
      assertEquals(PROMPT.length, st.promptTokens());
      assertEquals(
          got.length - 1, st.decodeSteps(), "the first token comes from the prompt's pass");
      assertTrue(st.prefillNanos() > 0 && st.decodeNanos() > 0, st.toString());
      assertEquals(st.decodeSteps() / (st.decodeNanos() / 1e9), st.decodeTokensPerSecond(), 1e-6);
      assertEquals(PROMPT.length / (st.prefillNanos() / 1e9), st.prefillTokensPerSecond(), 1e-6);
      g.generate(PROMPT, GenerationConfig.greedy().withMaxNewTokens(1), null);
      assertEquals(0, g.lastStats().decodeSteps());
      assertTrue(Double.isNaN(g.lastStats().decodeTokensPerSecond()));
      g.generate(PROMPT, GenerationConfig.greedy().withMaxNewTokens(0), null);
      assertNull(g.lastStats(), "no generation, no figures");
    }
  }

  @Test
  void descendingOrderIsTheStableSortByFloatCompare() {
    java.util.Random r = new java.util.Random(5);
    for (int trial = 0; trial < 20; trial++) {
      float[] v = new float[trial == 0 ? 1 : 2000 + trial];
      for (int i = 0; i < v.length; i++) // many ties: a tenth of the values are small integers
      v[i] = r.nextInt(10) == 0 ? Math.round(r.nextGaussian() * 3) : (float) r.nextGaussian();
      if (v.length > 8) {
        float[] odd = {-0.0f, 0.0f, Float.NaN, Float.POSITIVE_INFINITY, Float.NEGATIVE_INFINITY};
        for (int k = 0; k < odd.length; k++) v[r.nextInt(v.length)] = odd[k];
        v[1] = Float.intBitsToFloat(0x7fc00001); // a NaN of other bits: still one NaN
      }
      Integer[] want = new Integer[v.length];
      for (int i = 0; i < v.length; i++) want[i] = i;
      java.util.Arrays.sort(want, (a, b) -> Float.compare(v[b], v[a]));
      int[] all = java.util.Arrays.stream(want).mapToInt(Integer::intValue).toArray();
      assertArrayEquals(all, Generator.descendingOrder(v), "trial " + trial);
      // top-k's selection: the same first k indices, ties and odd values included
      for (int k : new int[] {1, 2, 50, 1000, v.length, v.length + 3}) {
        assertArrayEquals(
            java.util.Arrays.copyOf(all, Math.min(k, v.length)),
            Generator.topOrder(v, k),
            "trial " + trial + ", k " + k);
      }
    }
  }

  @Test
  void topKSamplingDrawsWhatTheFullOrderWouldDraw() {
    // sample() selects the kept indices (topOrder) for a top-k of at most an eighth of the
    // logits: the same tokens, seed for seed, as drawing over the full order's first k
    java.util.Random r = new java.util.Random(11);
    float[] logits = new float[32000];
    for (int i = 0; i < logits.length; i++) logits[i] = (float) (r.nextGaussian() * 4);
    for (int i = 0; i < 40; i++) logits[r.nextInt(logits.length)] = 25f; // ties at the top
    for (int k : new int[] {1, 40, 50, 4000}) {
      for (double topP : new double[] {1.0, 0.9}) {
        GenerationConfig c = new GenerationConfig(1, 0.8, k, topP, 1, 100);
        java.util.SplittableRandom a = new java.util.SplittableRandom(3),
            b = new java.util.SplittableRandom(3);
        int[] order = Generator.descendingOrder(logits);
        for (int draw = 0; draw < 200; draw++) {
          int want = Generator.draw(logits, order, c, b); // over the full order
          assertEquals(want, Generator.sample(logits, c, a), "k " + k + ", top-p " + topP);
        }
      }
    }
  }

  @Test
  void samplingIsSeededAndTopKOneIsGreedy() {
    try (MistralModel m = MistralModel.load(REF.resolve("model"), Device.cpu())) {
      Generator g = new Generator(m);
      GenerationConfig s = GenerationConfig.sampling(1.0, 7).withMaxNewTokens(10).withTopP(1.0);
      int[] a = g.generate(PROMPT, s, null), b = g.generate(PROMPT, s, null);
      assertArrayEquals(a, b);
      int[] c = g.generate(PROMPT, s.withSeed(8), null);
      assertFalse(java.util.Arrays.equals(a, c), "different seeds should sample differently");
      int[] k1 = g.generate(PROMPT, s.withTopK(1), null);
      assertArrayEquals(m.generateGreedy(PROMPT, 10, -1), k1);
    }
  }

  @Test
  void topPKeepsTheNucleus() {
    float[] logits = {5f, 4f, 0f, -1f};
    java.util.SplittableRandom r = new java.util.SplittableRandom(1);
    GenerationConfig c = new GenerationConfig(1, 1.0, 0, 0.5, 1, 100);
    for (int i = 0; i < 200; i++) assertEquals(0, Generator.sample(logits, c, r));
    GenerationConfig c2 = new GenerationConfig(1, 1.0, 0, 0.95, 1, 100);
    boolean sawOne = false;
    for (int i = 0; i < 400; i++) {
      int t = Generator.sample(logits, c2, r);
      assertTrue(t == 0 || t == 1, "token " + t + " outside the 0.95 nucleus");
      sawOne |= t == 1;
    }
    assertTrue(sawOne);
  }
}
