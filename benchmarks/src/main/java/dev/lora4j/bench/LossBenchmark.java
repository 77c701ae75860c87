package dev.lora4j.bench;

import dev.lora4j.Device;
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
 * The LM head and the loss of a batch two ways, both in the native core on the same device with the
 * same threads and the same seeded inputs (the core's {@code cross_entropy} op benchmark): {@code
 * fused} is the engine's path, the LM head and the cross-entropy chunk by chunk, never holding all
 * the logits; {@code materialized} computes the fp32 logits of every position ([tokens x vocab])
 * with one GEMM, then the softmax, the loss and the logits' gradient over that buffer. Each call is
 * the forward and the backward (the hidden states' gradient), as in a training step. The two
 * compute the same loss and gradient; the fused one never holds or moves the tokens x vocab x 4
 * bytes. The trial's last line gives the memory each held.
 *
 * <p>{@code device}: {@code cpu} (all cores) or {@code cuda} / {@code cuda:N}. The default shape is
 * a small model's head (hidden 128) over a Mistral vocabulary (32000).
 */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MILLISECONDS)
@Warmup(iterations = 2, time = 2)
@Measurement(iterations = 3, time = 3)
@Fork(
    value = 1,
    jvmArgs = {"--enable-native-access=ALL-UNNAMED", "-Xmx4g"})
public class LossBenchmark {
  @Param({"cpu"})
  public String device;

  @Param({"materialized", "fused"})
  public String variant;

  @Param({"512"})
  public int tokens;

  @Param({"128"})
  public int hidden;

  @Param({"32000"})
  public int vocab;

  OpBench bench;

  @Setup(Level.Trial)
  public void setup() {
    bench =
        OpBench.create(
            Device.parse(device), "cross_entropy", variant, new long[] {tokens, hidden, vocab}, 3);
  }

  @Benchmark
  public void loss() {
    bench.run(1);
  }

  @TearDown(Level.Trial)
  public void close() {
    System.out.printf(
        "%n%s: loss sum %.6f, %d MiB held%n",
        bench.description(), bench.output("loss")[0], bench.cost().memory() >> 20);
    bench.close();
  }
}
