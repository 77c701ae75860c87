package dev.lora4j.bench;

import static dev.lora4j.bench.Lora4jBenchLibrary.*;

import dev.lora4j.Device;
import dev.lora4j.nativ.NativeException;
import java.io.File;
import java.util.ArrayList;
import java.util.List;
import org.bytedeco.javacpp.BytePointer;
import org.bytedeco.javacpp.FloatPointer;
import org.bytedeco.javacpp.Loader;

/**
 * Owner of one single-op benchmark ({@code lora4j_op_bench_*} in lora4j_bench.h, a library apart
 * from the product's): one op of the training step (attention, cross-entropy, LoRA linear, the
 * frozen GEMM with a bf16 or NF4 weight, AdamW, RMSNorm, RoPE, SwiGLU) in one of its variants, on
 * inputs the core allocates on the device and fills from a seed. Used by the JMH {@code
 * OpBenchmark} and by tests that check that the variants of an op compute the same function.
 *
 * <p>Methods are synchronized; after {@link #close()} they throw {@link IllegalStateException}.
 * Every non-zero status of the core is a {@link NativeException} carrying its message.
 */
public final class OpBench implements AutoCloseable {
  /**
   * Per run of the op: its algorithmic FLOPs (the same for every variant; 0 for the memory-bound
   * element-wise ops), the byte floor (each input read and each output written once), and the bytes
   * the benchmark holds on its device, scratch included.
   */
  public record Cost(double flops, double bytes, long memory) {}

  private lora4j_op_bench handle;

  private OpBench(lora4j_op_bench handle) {
    this.handle = handle;
  }

  /**
   * Creates the benchmark of {@code op} (attention_fwd, attention_bwd, cross_entropy,
   * lora_linear_fwd, lora_linear_bwd, frozen_linear_fwd, frozen_linear_bwd, adamw, rmsnorm_fwd,
   * rmsnorm_bwd, rope_fwd, rope_bwd, swiglu_fwd, swiglu_bwd) in {@code variant} (null: the op's
   * default) on {@code device}. {@code dims} empty or null: the device's default shape (Mistral-7B
   * on CUDA, small on the CPU); see lora4j_bench.h for the dims of each op.
   */
  public static OpBench create(Device device, String op, String variant, long[] dims, long seed) {
    ensureLoaded();
    int dev = device.isCuda() ? device.index() : -1;
    long[] d = dims == null || dims.length == 0 ? null : dims.clone();
    try (BytePointer o = op == null ? null : new BytePointer(op);
        BytePointer v = variant == null ? null : new BytePointer(variant)) {
      lora4j_op_bench h = new lora4j_op_bench();
      check(lora4j_op_bench_create(dev, o, v, d, d == null ? 0 : d.length, seed, h));
      return new OpBench(h);
    }
  }

  private static boolean loaded;

  /**
   * Loads the benchmark library once and points it at the CUDA benchmarks packed beside it (or at
   * {@code -Dlora4j.cuda.bench.library}).
   */
  private static synchronized void ensureLoaded() {
    if (loaded) return;
    Loader.load(Lora4jBenchLibrary.class);
    String path = System.getProperty("lora4j.cuda.bench.library");
    if (path == null || path.isEmpty()) {
      try {
        File f =
            Loader.cacheResource(
                Lora4jBenchLibrary.class, Loader.getPlatform() + "/liblora4j_cuda_bench.so");
        if (f != null) path = f.getAbsolutePath();
      } catch (Exception e) {
        path = null; // not packed: CUDA benchmarks report that the library is missing
      }
    }
    if (path != null && !path.isEmpty()) {
      try (BytePointer p = new BytePointer(path)) {
        check(lora4j_bench_set_cuda_library(p));
      }
    }
    loaded = true;
  }

  private static void check(int status) {
    if (status != 0) throw new NativeException(status, lora4j_bench_last_error().getString());
  }

  /** The NUL-terminated string in a buffer (JavaCPP reads up to the limit otherwise). */
  private static String cString(BytePointer p) {
    long cap = p.capacity();
    String s = p.limit(0).getString(java.nio.charset.StandardCharsets.UTF_8);
    p.limit(cap);
    return s;
  }

  private lora4j_op_bench h() {
    if (handle == null) throw new IllegalStateException("op bench is closed");
    return handle;
  }

  /** Runs the op {@code iterations} times; returns when the device has finished. */
  public synchronized void run(int iterations) {
    check(lora4j_op_bench_run(h(), iterations));
  }

  public synchronized Cost cost() {
    double[] flops = new double[1];
    double[] bytes = new double[1];
    long[] memory = new long[1];
    check(lora4j_op_bench_cost(h(), flops, bytes, memory));
    return new Cost(flops[0], bytes[0], memory[0]);
  }

  /** For example {@code "attention_fwd/flash B=4 S=2048 H=32 KH=8 D=128 on cuda:0"}. */
  public synchronized String description() {
    try (BytePointer text = new BytePointer(512)) {
      check(lora4j_op_bench_describe(h(), text, 512));
      return cString(text);
    }
  }

  /** Names of the op's outputs (out, lse / dq, dk, dv / loss, dh / ...). */
  public synchronized List<String> outputNames() {
    int[] count = new int[1];
    check(lora4j_op_bench_output_count(h(), count));
    List<String> names = new ArrayList<>();
    try (BytePointer name = new BytePointer(128)) {
      long[] numel = new long[1];
      for (int i = 0; i < count[0]; i++) {
        check(lora4j_op_bench_output_info(h(), i, name, 128, numel));
        names.add(cString(name));
      }
    }
    return names;
  }

  /** A copy of the named output as fp32. */
  public synchronized float[] output(String name) {
    int index = outputNames().indexOf(name);
    if (index < 0)
      throw new IllegalArgumentException(
          "no output '" + name + "' in " + description() + "; outputs: " + outputNames());
    long[] numel = new long[1];
    try (BytePointer n = new BytePointer(128)) {
      check(lora4j_op_bench_output_info(h(), index, n, 128, numel));
    }
    if (numel[0] > Integer.MAX_VALUE)
      throw new IllegalArgumentException("output '" + name + "' has " + numel[0] + " elements");
    try (FloatPointer p = new FloatPointer(numel[0])) {
      check(lora4j_op_bench_output(h(), index, p, numel[0]));
      float[] out = new float[(int) numel[0]];
      p.get(out);
      return out;
    }
  }

  @Override
  public synchronized void close() {
    if (handle != null) {
      lora4j_op_bench_destroy(handle);
      handle = null;
    }
  }
}
