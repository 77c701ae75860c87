package dev.lora4j.bench;

import dev.lora4j.nativ.NativeLibrary;
import org.bytedeco.javacpp.BytePointer;
import org.bytedeco.javacpp.FloatPointer;
import org.bytedeco.javacpp.Loader;
import org.bytedeco.javacpp.Pointer;
import org.bytedeco.javacpp.annotation.ByPtrPtr;
import org.bytedeco.javacpp.annotation.Cast;
import org.bytedeco.javacpp.annotation.Opaque;
import org.bytedeco.javacpp.annotation.Platform;
import org.bytedeco.javacpp.annotation.Properties;

/**
 * The JavaCPP mapping of {@code native/include/lora4j_bench.h}: the single-op benchmarks, which
 * live in their own native library (liblora4j_bench, and liblora4j_cuda_bench for CUDA) and are
 * packed only into this module, never into the product jar. {@link OpBench} owns the handles.
 */
@Properties(
    target = "dev.lora4j.bench.Lora4jBenchLibrary",
    value =
        @Platform(
            value = "linux-x86_64",
            compiler = "cpp17",
            include = "lora4j_bench.h",
            link = "lora4j_bench"))
public final class Lora4jBenchLibrary {
  static {
    NativeLibrary.ensureLoaded(); // liblora4j first: liblora4j_bench links it
    Loader.load();
  }

  private Lora4jBenchLibrary() {}

  public static native @Cast("const char*") BytePointer lora4j_bench_last_error();

  public static native int lora4j_bench_set_cuda_library(@Cast("const char*") BytePointer path);

  /** Opaque single-op benchmark handle. */
  @Opaque
  public static class lora4j_op_bench extends Pointer {
    public lora4j_op_bench() {
      super((Pointer) null);
    }

    public lora4j_op_bench(Pointer p) {
      super(p);
    }
  }

  public static native int lora4j_op_bench_create(
      int device,
      @Cast("const char*") BytePointer op,
      @Cast("const char*") BytePointer variant,
      @Cast("const int64_t*") long[] dims,
      int ndims,
      @Cast("uint64_t") long seed,
      @ByPtrPtr lora4j_op_bench out);

  public static native int lora4j_op_bench_destroy(lora4j_op_bench bench);

  public static native int lora4j_op_bench_run(lora4j_op_bench bench, int iterations);

  public static native int lora4j_op_bench_cost(
      lora4j_op_bench bench, double[] flops, double[] bytes, @Cast("int64_t*") long[] memory);

  public static native int lora4j_op_bench_describe(
      lora4j_op_bench bench, @Cast("char*") BytePointer text, int textCap);

  public static native int lora4j_op_bench_output_count(
      lora4j_op_bench bench, @Cast("int32_t*") int[] count);

  public static native int lora4j_op_bench_output_info(
      lora4j_op_bench bench,
      int index,
      @Cast("char*") BytePointer name,
      int nameCap,
      @Cast("int64_t*") long[] numel);

  public static native int lora4j_op_bench_output(
      lora4j_op_bench bench, int index, FloatPointer out, long numel);
}
