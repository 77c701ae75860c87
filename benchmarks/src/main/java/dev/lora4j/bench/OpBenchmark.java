package dev.lora4j.bench;

import dev.lora4j.Device;
import java.util.Arrays;
import java.util.concurrent.TimeUnit;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Level;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OperationsPerInvocation;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.TearDown;
import org.openjdk.jmh.annotations.Warmup;
import org.openjdk.jmh.infra.IterationParams;
import org.openjdk.jmh.runner.IterationType;

/**
 * One op of the training step per benchmark, in each of its variants, through the core's single-op
 * benchmarks ({@link OpBench}): attention flash vs materialized scores (forward and backward; on
 * CUDA {@code flash_mma} runs the mma.sync kernels where {@code flash} takes the Hopper ones), LM
 * head + cross-entropy fused and chunked vs materialized fp32 logits ({@code fused_serial}: the
 * fused chunks without the overlap of each chunk's loss kernel with the next chunk's GEMM), LoRA
 * linear fused vs separate low-rank path (forward and backward), the frozen projection GEMM with a
 * bf16 weight vs an NF4 weight dequantized into a bf16 scratch first vs dequantized inside the GEMM
 * (QLoRA; forward y = x W^T and input gradient dx = dy W), AdamW one flat launch vs one per tensor,
 * and RMSNorm, RoPE, SwiGLU forward and backward.
 *
 * <p>{@code device}: {@code cpu} (small shapes) or {@code cuda} / {@code cuda:N} (Mistral-7B v0.3
 * at 4 x 2048 tokens: hidden 4096, 32 heads, 8 KV heads, head_dim 128, MLP 14336, vocab 32768, LoRA
 * r 16). {@code shape}: {@code default} or the op's dims joined by {@code x}, in the order lora4j.h
 * gives them (for example {@code -p op=attention_fwd/flash -p shape=1x8192x32x8x128}; JMH splits
 * parameter values at commas; the frozen GEMMs at Mistral-7B's projection shapes: {@code -p
 * op=frozen_linear_fwd/bf16,frozen_linear_fwd/nf4-scratch,... -p
 * shape=2048x4096x4096,2048x4096x1024,...}, dims n x in x out). The score is the time per call of
 * the op; each trial ends with a line giving TFLOP/s (the op's algorithmic FLOPs, the same for
 * every variant), GB/s against the byte floor and the memory the benchmark held, from the
 * measurement iterations.
 */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MILLISECONDS)
@Warmup(iterations = 2, time = 1)
@Measurement(iterations = 3, time = 2)
@Fork(
    value = 1,
    jvmArgs = {"--enable-native-access=ALL-UNNAMED"})
public class OpBenchmark {
  /** Calls of the op per benchmark invocation (one device synchronization per invocation). */
  static final int CALLS = 4;

  @Param({"cpu"})
  public String device;

  @Param({
    "attention_fwd/flash",
    "attention_fwd/materialized",
    "attention_fwd/flash_mma",
    "attention_bwd/flash",
    "attention_bwd/materialized",
    "attention_bwd/flash_mma",
    "cross_entropy/fused",
    "cross_entropy/materialized",
    "cross_entropy/fused_serial",
    "lora_linear_fwd/fused",
    "lora_linear_fwd/separate",
    "lora_linear_bwd/fused",
    "lora_linear_bwd/separate",
    "frozen_linear_fwd/bf16",
    "frozen_linear_fwd/nf4-scratch",
    "frozen_linear_fwd/nf4-fused",
    "frozen_linear_bwd/bf16",
    "frozen_linear_bwd/nf4-scratch",
    "frozen_linear_bwd/nf4-fused",
    "adamw/flat",
    "adamw/per_tensor",
    "rmsnorm_fwd/default",
    "rmsnorm_bwd/default",
    "rope_fwd/default",
    "rope_bwd/default",
    "swiglu_fwd/default",
    "swiglu_bwd/default"
  })
  public String op;

  @Param({"default"})
  public String shape;

  OpBench bench;
  boolean measuring;
  long nanos;
  long calls;

  @Setup(Level.Trial)
  public void setup() {
    String[] opVariant = op.split("/", 2);
    long[] dims =
        shape.equals("default")
            ? null
            : Arrays.stream(shape.split("x")).mapToLong(s -> Long.parseLong(s.trim())).toArray();
    bench =
        OpBench.create(
            Device.parse(device),
            opVariant[0],
            opVariant.length > 1 ? opVariant[1] : null,
            dims,
            1);
  }

  @Setup(Level.Iteration)
  public void iteration(IterationParams params) {
    measuring = params.getType() == IterationType.MEASUREMENT;
  }

  @Benchmark
  @OperationsPerInvocation(CALLS)
  public void run() {
    long t0 = System.nanoTime();
    bench.run(CALLS);
    if (measuring) {
      nanos += System.nanoTime() - t0;
      calls += CALLS;
    }
  }

  @TearDown(Level.Trial)
  public void report() {
    if (calls > 0) {
      OpBench.Cost c = bench.cost();
      double s = nanos * 1e-9 / calls;
      System.out.printf(
          "%n%s: %.4f ms/call, %s TFLOP/s, %.1f GB/s (byte floor), %d MiB held%n",
          bench.description(),
          s * 1e3,
          c.flops() > 0 ? String.format("%.3g", c.flops() / s * 1e-12) : "-",
          c.bytes() / s * 1e-9,
          c.memory() >> 20);
    }
    bench.close();
  }
}
