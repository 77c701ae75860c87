package dev.lora4j.bench;

import dev.lora4j.GenerationConfig;
import dev.lora4j.Sampler;
import dev.lora4j.SplitMix64;
import dev.lora4j.nativ.NativeEngine;
import java.util.SplittableRandom;
import java.util.concurrent.TimeUnit;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Level;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.Warmup;

/**
 * One sampling draw ({@link Sampler#sample}) from a step's logits over a Mistral vocabulary
 * (32000): the host's work per generated token when `generate` samples (temperature 0.7), beside
 * the decode step itself. {@code logits}: {@code peaked}, a trained model's confident step (the
 * bulk N(-2, 2.5^2), a few tokens 12 to 20 above it: a nucleus of a few tokens), or {@code flat}, a
 * model with random weights (N(0, 1): the nucleus is most of the vocabulary). Each call draws from
 * one of 64 such rows in turn.
 */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MICROSECONDS)
@Warmup(iterations = 2, time = 1)
@Measurement(iterations = 3, time = 2)
@Fork(1)
public class SamplingBenchmark {
  @Param({"peaked", "flat"})
  public String logits;

  @Param({"0", "50"})
  public int topK;

  @Param({"0.9", "1.0"})
  public double topP;

  @Param({"32000"})
  public int vocab;

  @Param({"java", "core"})
  public String impl;

  float[][] rows;
  GenerationConfig cfg;
  SplitMix64 rng;
  int next;

  @Setup(Level.Trial)
  public void setup() {
    SplittableRandom r = new SplittableRandom(1);
    rows = new float[64][vocab];
    for (float[] row : rows) {
      boolean peaked = logits.equals("peaked");
      for (int i = 0; i < vocab; i++)
        row[i] = (float) (peaked ? -2 + 2.5 * r.nextGaussian() : r.nextGaussian());
      if (peaked)
        for (int j = 0; j < 6; j++) row[r.nextInt(vocab)] = (float) (10 + 8 * r.nextDouble());
    }
    cfg = new GenerationConfig(1, 0.7, topK, topP, 1, 100);
    rng = new SplitMix64(2);
  }

  @Benchmark
  public int sample() {
    next = (next + 1) & 63;
    return impl.equals("core")
        ? NativeEngine.sample(rows[next], cfg.temperature(), cfg.topK(), cfg.topP(), rng)
        : Sampler.sample(rows[next], cfg, rng);
  }
}
