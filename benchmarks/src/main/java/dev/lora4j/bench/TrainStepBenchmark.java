package dev.lora4j.bench;

import dev.lora4j.AdamWConfig;
import dev.lora4j.Batch;
import dev.lora4j.Device;
import dev.lora4j.LoraConfig;
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
 * One whole optimizer step (forward, backward to every LoRA parameter, AdamW) through the Java API,
 * LoRA r=16 on all seven projections, with and without per-layer recompute. Device from {@code -p
 * device=cpu|cuda}; the shapes are small enough for the CPU backend.
 */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MILLISECONDS)
@Warmup(iterations = 2, time = 2)
@Measurement(iterations = 3, time = 3)
@Fork(
    value = 1,
    jvmArgs = {"--enable-native-access=ALL-UNNAMED"})
public class TrainStepBenchmark {
  @Param({"cpu"})
  public String device;

  @Param({"256"})
  public int hidden;

  @Param({"256"})
  public int seq;

  @Param({"NONE", "LAYER"})
  public MistralModel.Recompute recompute;

  MistralModel model;
  Batch batch;

  @Setup(Level.Trial)
  public void setup() {
    java.nio.file.Path dir =
        BenchModel.write(hidden, 4, hidden / 64, Math.max(1, hidden / 256), hidden * 3, 8000);
    model =
        MistralModel.load(
            dir,
            Device.parse(device),
            MistralModel.LoadOptions.defaults()
                .withRecompute(recompute)
                .withMaxSeqLength(Math.max(seq, 64)));
    model.attachNewAdapter(LoraConfig.builder().rank(16).alpha(16).allLinear().build(), 1);
    batch = BenchModel.batch(4, seq, 8000, 2);
  }

  @Benchmark
  public double step() {
    return model.trainStep(batch, AdamWConfig.defaults().withLr(1e-4)).loss();
  }

  @TearDown(Level.Trial)
  public void close() {
    model.close();
  }
}
