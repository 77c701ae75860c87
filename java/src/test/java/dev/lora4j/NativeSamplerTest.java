package dev.lora4j;

import static org.junit.jupiter.api.Assertions.*;

import dev.lora4j.nativ.NativeEngine;
import java.nio.file.Path;
import java.util.Random;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;

/**
 * The core's sampler (lora4j_sample, lora4j_decode_sample) draws the Java Sampler's tokens and
 * leaves the generator where SplitMix64 leaves it; SplitMix64 is SplittableRandom's sequence.
 */
class NativeSamplerTest {
  static final Path REF = Path.of("src/test/resources/hf-reference/tiny");

  @Test
  void splitMix64IsSplittableRandomsSequence() {
    long[] bounds = {
      1, 2, 3, 7, 1L << 20, 1000003, (1L << 40) * 32000, (1L << 62) + 1, Long.MAX_VALUE
    };
    for (long seed : new long[] {0, 1, -1, 42, Long.MIN_VALUE, 0x123456789abcdefL}) {
      SplittableRandom want = new SplittableRandom(seed);
      SplitMix64 got = new SplitMix64(seed);
      for (int i = 0; i < 2000; i++) {
        long bound = bounds[i % bounds.length];
        if (i % 3 == 0) assertEquals(want.nextLong(), got.nextLong(), "seed " + seed + ", " + i);
        else assertEquals(want.nextLong(bound), got.nextLong(bound), "seed " + seed + ", " + i);
      }
    }
  }

  @Test
  void coreDrawsTheJavaSamplersTokens() {
    Random r = new Random(17);
    for (int trial = 0; trial < 10; trial++) {
      int v = trial < 3 ? 5 + trial : 32000;
      float[] x = SamplerTest.trialLogits(r, trial, v);
      if (trial == 8) x[r.nextInt(v)] = Float.POSITIVE_INFINITY;
      for (int k : new int[] {0, 1, 3, 50, 4000, v + 3}) {
        for (double p : new double[] {1.0, 0.9, 0.5, 1e-9}) {
          for (double t : new double[] {0.7, 1.0, 1e-3, 50, Double.POSITIVE_INFINITY}) {
            GenerationConfig c = new GenerationConfig(1, t, k, p, 1, 100);
            SplitMix64 a = new SplitMix64(trial), b = new SplitMix64(trial);
            for (int draw = 0; draw < 6; draw++) {
              String at =
                  "trial " + trial + ", k " + k + ", p " + p + ", t " + t + ", draw " + draw;
              assertEquals(Sampler.sample(x, c, a), NativeEngine.sample(x, t, k, p, b), at);
              assertEquals(a.state(), b.state(), at);
            }
          }
        }
      }
    }
    // nothing to draw: the greedy token, the generator untouched
    SplitMix64 g = new SplitMix64(5);
    assertEquals(0, NativeEngine.sample(new float[] {Float.NaN, Float.NaN}, 1, 0, 1, g));
    assertEquals(5, g.state());
    assertThrows(
        dev.lora4j.nativ.NativeException.class,
        () -> NativeEngine.sample(new float[] {1f}, 0, 0, 1, new SplitMix64(1)));
  }

  @Test
  void generatorSamplesInTheCoreAsStepByStepInJava() {
    // Generator's sampling path (decodeSample in chunks) against decodeNext and Sampler.sample
    // each step, the same generator: the same tokens
    try (MistralModel m = MistralModel.load(REF.resolve("model"), Device.cpu())) {
      m.attachAdapter(REF.resolve("adapter_trained"));
      int[] prompt = GenerationTest.PROMPT;
      for (GenerationConfig c :
          new GenerationConfig[] {
            GenerationConfig.sampling(1.0, 3).withMaxNewTokens(40),
            GenerationConfig.sampling(0.7, 4).withMaxNewTokens(40).withTopK(5),
            GenerationConfig.sampling(2.0, 5).withMaxNewTokens(40).withTopP(1.0)
          }) {
        int[] got = new Generator(m).generate(prompt, c, null);
        SplitMix64 rng = new SplitMix64(c.seed());
        int[] want = new int[c.maxNewTokens()];
        float[] logits = m.engine().decodeStart(prompt);
        for (int i = 0; i < want.length; i++) {
          want[i] = Sampler.sample(logits, c, rng);
          if (i + 1 < want.length) logits = m.engine().decodeNext(want[i]);
        }
        // (the generator stops after an end-of-sequence token: then a prefix ending with it)
        assertArrayEquals(java.util.Arrays.copyOf(want, got.length), got, c.toString());
        if (got.length < want.length) {
          assertEquals((int) m.config().eosTokenId(), got[got.length - 1], c.toString());
        }
      }
    }
  }
}
