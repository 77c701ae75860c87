package dev.lora4j;

import static org.junit.jupiter.api.Assertions.*;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

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
  void anEndIdOfGenerationConfigEndsTheText(@TempDir Path tmp) throws Exception {
    // generation_config.json's eos_token_id (a list, as some models ship it) ends the text at any
    // of its ids, as Hugging Face's generate does, also inside a chunk the core ran past it
    Path dir = tmp.resolve("model");
    java.nio.file.Files.createDirectories(dir);
    try (var files = java.nio.file.Files.list(REF.resolve("model"))) {
      for (Path f : files.toList()) java.nio.file.Files.copy(f, dir.resolve(f.getFileName()));
    }
    int[] free;
    try (MistralModel m = MistralModel.load(dir, Device.cpu())) {
      m.attachAdapter(REF.resolve("adapter_trained"));
      free =
          new Generator(m).generate(PROMPT, GenerationConfig.greedy().withMaxNewTokens(12), null);
    }
    assertEquals(12, free.length);
    int stop = free[6];
    int first = 0;
    while (free[first] != stop) first++;
    java.nio.file.Files.writeString(
        dir.resolve("generation_config.json"), "{\"eos_token_id\": [2, " + stop + "]}");
    try (MistralModel m = MistralModel.load(dir, Device.cpu())) {
      m.attachAdapter(REF.resolve("adapter_trained"));
      List<Integer> streamed = new ArrayList<>();
      int[] got =
          new Generator(m)
              .generate(PROMPT, GenerationConfig.greedy().withMaxNewTokens(12), streamed::add);
      assertArrayEquals(Arrays.copyOf(free, first + 1), got);
      assertEquals(first + 1, streamed.size());
    }
    java.nio.file.Files.writeString(
        dir.resolve("generation_config.json"), "{\"eos_token_id\": \"x\"}");
    try (MistralModel m = MistralModel.load(dir, Device.cpu())) {
      Lora4jException e =
          assertThrows(
              Lora4jException.class,
              () -> new Generator(m).generate(PROMPT, GenerationConfig.greedy(), null));
      assertTrue(e.getMessage().contains("eos_token_id"), e.getMessage());
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
      // all told: every new token, the whole call (at least the engine's passes)
      assertEquals(got.length, st.tokens());
      assertTrue(st.totalNanos() >= st.prefillNanos() + st.decodeNanos(), st.toString());
      assertEquals(st.tokens() / (st.totalNanos() / 1e9), st.tokensPerSecond(), 1e-6);
      g.generate(PROMPT, GenerationConfig.greedy().withMaxNewTokens(1), null);
      assertEquals(0, g.lastStats().decodeSteps());
      assertTrue(Double.isNaN(g.lastStats().decodeTokensPerSecond()));
      g.generate(PROMPT, GenerationConfig.greedy().withMaxNewTokens(0), null);
      assertNull(g.lastStats(), "no generation, no figures");
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
}
