package dev.lora4j.bench;

import dev.lora4j.Batch;
import dev.lora4j.Device;
import dev.lora4j.MistralModel;
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
import org.openjdk.jmh.annotations.TearDown;
import org.openjdk.jmh.annotations.Warmup;

/**
 * The loss of a batch two ways: {@code materialized} copies the fp32 logits of every position
 * out of the engine ([tokens x vocab]) and takes the cross-entropy in Java; {@code fused} lets the
 * engine compute the LM head and the cross-entropy chunk by chunk, never holding all the logits.
 * Both give the same number; the fused one moves tokens x vocab x 4 bytes less.
 */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MILLISECONDS)
@Warmup(iterations = 2, time = 2)
@Measurement(iterations = 3, time = 3)
@Fork(value = 1, jvmArgs = {"--enable-native-access=ALL-UNNAMED", "-Xmx4g"})
public class LossBenchmark {
  @Param({"cpu"})
  public String device;

  @Param({"materialized", "fused"})
  public String variant;

  @Param({"512"})
  public int tokens;

  MistralModel model;
  Batch batch;
  int vocab = 32000;

  @Setup(Level.Trial)
  public void setup() {
    model = MistralModel.load(BenchModel.write(128, 1, 2, 1, 384, vocab), Device.parse(device),
        MistralModel.LoadOptions.defaults().withMaxSeqLength(Math.max(tokens, 64)));
    batch = BenchModel.batch(1, tokens, vocab, 3);
  }

  @Benchmark
  public double loss() {
    if (variant.equals("fused")) return model.evalLoss(batch);
    float[] logits = model.logits(batch);
    double sum = 0;
    int n = 0;
    int[] labels = batch.labels();
    for (int t = 0; t + 1 < tokens; t++) {
      int y = labels[t + 1];
      if (y == -100) continue;
      double max = Double.NEGATIVE_INFINITY;
      for (int v = 0; v < vocab; v++) max = Math.max(max, logits[t * vocab + v]);
      double z = 0;
      for (int v = 0; v < vocab; v++) z += Math.exp(logits[t * vocab + v] - max);
      sum += Math.log(z) + max - logits[t * vocab + y];
      n++;
    }
    return sum / n;
  }

  @TearDown(Level.Trial)
  public void close() {
    model.close();
  }
}
