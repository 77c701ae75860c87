package dev.lora4j.nativ;

import org.bytedeco.javacpp.BytePointer;
import org.bytedeco.javacpp.FloatPointer;
import org.bytedeco.javacpp.IntPointer;
import org.bytedeco.javacpp.Loader;
import org.bytedeco.javacpp.LongPointer;
import org.bytedeco.javacpp.Pointer;
import org.bytedeco.javacpp.annotation.ByPtrPtr;
import org.bytedeco.javacpp.annotation.Cast;
import org.bytedeco.javacpp.annotation.Const;
import org.bytedeco.javacpp.annotation.NoOffset;
import org.bytedeco.javacpp.annotation.Opaque;
import org.bytedeco.javacpp.annotation.Platform;
import org.bytedeco.javacpp.annotation.Properties;

/**
 * The JavaCPP mapping of {@code native/include/lora4j.h}, one Java method per C function. This
 * class is the raw boundary: it returns status codes and fills native buffers. Library code uses
 * {@link NativeEngine}, which owns the handle and turns every non-zero status into a {@link
 * NativeException}.
 */
@Properties(
    target = "dev.lora4j.nativ.Lora4jLibrary",
    value =
        @Platform(
            value = "linux-x86_64",
            compiler = "cpp17",
            include = "lora4j.h",
            link = "lora4j"))
public final class Lora4jLibrary {
  static {
    Loader.load();
  }

  private Lora4jLibrary() {}

  // The #define constants of lora4j.h, under the header's names and in its order.
  // Lora4jHeaderTest checks both ways that they are exactly the header's.

  public static final int LORA4J_OK = 0;
  public static final int LORA4J_EINVAL = 1;
  public static final int LORA4J_ESTATE = 2;
  public static final int LORA4J_ENOMEM = 3;
  public static final int LORA4J_EDEVICE = 4;
  public static final int LORA4J_EUNSUPPORTED = 5;
  public static final int LORA4J_EINTERNAL = 6;
  public static final int LORA4J_EFAULTY = 7;

  public static final int LORA4J_DEVICE_CPU = 0;
  public static final int LORA4J_DEVICE_CUDA = 1;

  public static final int LORA4J_DTYPE_F32 = 0;
  public static final int LORA4J_DTYPE_BF16 = 1;
  public static final int LORA4J_DTYPE_F16 = 2;

  public static final int LORA4J_TARGET_Q = 1;
  public static final int LORA4J_TARGET_K = 2;
  public static final int LORA4J_TARGET_V = 4;
  public static final int LORA4J_TARGET_O = 8;
  public static final int LORA4J_TARGET_GATE = 16;
  public static final int LORA4J_TARGET_UP = 32;
  public static final int LORA4J_TARGET_DOWN = 64;

  public static final int LORA4J_SLOT_Q = 0;
  public static final int LORA4J_SLOT_K = 1;
  public static final int LORA4J_SLOT_V = 2;
  public static final int LORA4J_SLOT_O = 3;
  public static final int LORA4J_SLOT_GATE = 4;
  public static final int LORA4J_SLOT_UP = 5;
  public static final int LORA4J_SLOT_DOWN = 6;
  public static final int LORA4J_SLOT_INPUT_NORM = 7;
  public static final int LORA4J_SLOT_POST_ATTN_NORM = 8;
  public static final int LORA4J_SLOT_EMBED = 9;
  public static final int LORA4J_SLOT_FINAL_NORM = 10;
  public static final int LORA4J_SLOT_LM_HEAD = 11;

  public static final int LORA4J_RECOMPUTE_NONE = 0;
  public static final int LORA4J_RECOMPUTE_LAYER = 1;
  public static final int LORA4J_RECOMPUTE_SELECTIVE = 2;
  public static final int LORA4J_RECOMPUTE_ATTENTION = 3;

  public static final int LORA4J_STATE_PARAM = 0;
  public static final int LORA4J_STATE_GRAD = 1;
  public static final int LORA4J_STATE_EXP_AVG = 2;
  public static final int LORA4J_STATE_EXP_AVG_SQ = 3;

  public static final int LORA4J_AGG_MEAN = 0;
  public static final int LORA4J_AGG_MEDIAN = 1;
  public static final int LORA4J_AGG_TRIMMED_MEAN = 2;
  public static final int LORA4J_AGG_KRUM = 3;
  public static final int LORA4J_AGG_CENTERED_CLIP = 4;
  public static final int LORA4J_AGG_MIX = 256;
  public static final int LORA4J_DIST_ID_BYTES = 128;

  /** Opaque engine handle. */
  @Opaque
  public static class lora4j_engine extends Pointer {
    public lora4j_engine() {
      super((Pointer) null);
    }

    public lora4j_engine(Pointer p) {
      super(p);
    }
  }

  @NoOffset
  public static class lora4j_model_config extends Pointer {
    static {
      Loader.load();
    }

    public lora4j_model_config() {
      super((Pointer) null);
      allocate();
    }

    private native void allocate();

    public native int vocab_size();

    public native lora4j_model_config vocab_size(int v);

    public native int hidden_size();

    public native lora4j_model_config hidden_size(int v);

    public native int intermediate_size();

    public native lora4j_model_config intermediate_size(int v);

    public native int num_layers();

    public native lora4j_model_config num_layers(int v);

    public native int num_heads();

    public native lora4j_model_config num_heads(int v);

    public native int num_kv_heads();

    public native lora4j_model_config num_kv_heads(int v);

    public native int head_dim();

    public native lora4j_model_config head_dim(int v);

    public native int sliding_window();

    public native lora4j_model_config sliding_window(int v);

    public native int max_seq_len();

    public native lora4j_model_config max_seq_len(int v);

    public native float rms_norm_eps();

    public native lora4j_model_config rms_norm_eps(float v);

    public native double rope_theta();

    public native lora4j_model_config rope_theta(double v);
  }

  @NoOffset
  public static class lora4j_engine_options extends Pointer {
    static {
      Loader.load();
    }

    public lora4j_engine_options() {
      super((Pointer) null);
      allocate();
    }

    private native void allocate();

    public native int device();

    public native lora4j_engine_options device(int v);

    public native int device_index();

    public native lora4j_engine_options device_index(int v);

    public native int num_threads();

    public native lora4j_engine_options num_threads(int v);

    public native int recompute();

    public native lora4j_engine_options recompute(int v);

    public native int offload_checkpoints();

    public native lora4j_engine_options offload_checkpoints(int v);
  }

  @NoOffset
  public static class lora4j_batch extends Pointer {
    static {
      Loader.load();
    }

    public lora4j_batch() {
      super((Pointer) null);
      allocate();
    }

    private native void allocate();

    public native int batch();

    public native lora4j_batch batch(int v);

    public native int seq();

    public native lora4j_batch seq(int v);

    public native @Cast("const int32_t*") IntPointer input_ids();

    public native lora4j_batch input_ids(IntPointer v);

    public native @Cast("const int32_t*") IntPointer attention_mask();

    public native lora4j_batch attention_mask(IntPointer v);

    public native @Cast("const int32_t*") IntPointer labels();

    public native lora4j_batch labels(IntPointer v);

    public native @Cast("const int32_t*") IntPointer position_ids();

    public native lora4j_batch position_ids(IntPointer v);

    public native @Cast("const int32_t*") IntPointer segment_ids();

    public native lora4j_batch segment_ids(IntPointer v);
  }

  @NoOffset
  public static class lora4j_adamw extends Pointer {
    static {
      Loader.load();
    }

    public lora4j_adamw() {
      super((Pointer) null);
      allocate();
    }

    private native void allocate();

    public native float lr();

    public native lora4j_adamw lr(float v);

    public native float beta1();

    public native lora4j_adamw beta1(float v);

    public native float beta2();

    public native lora4j_adamw beta2(float v);

    public native float eps();

    public native lora4j_adamw eps(float v);

    public native float weight_decay();

    public native lora4j_adamw weight_decay(float v);

    public native float max_grad_norm();

    public native lora4j_adamw max_grad_norm(float v);
  }

  @NoOffset
  public static class lora4j_step_result extends Pointer {
    static {
      Loader.load();
    }

    public lora4j_step_result() {
      super((Pointer) null);
      allocate();
    }

    private native void allocate();

    public native double grad_norm();

    public native lora4j_step_result grad_norm(double v);

    public native int applied();

    public native lora4j_step_result applied(int v);

    public native long step();

    public native lora4j_step_result step(long v);
  }

  /** One NF4 weight in bitsandbytes' layout (lora4j_nf4_weight); pointers to native memory. */
  @NoOffset
  public static class lora4j_nf4_weight extends Pointer {
    static {
      Loader.load();
    }

    public lora4j_nf4_weight() {
      super((Pointer) null);
      allocate();
    }

    private native void allocate();

    public native long numel();

    public native lora4j_nf4_weight numel(long v);

    public native int blocksize();

    public native lora4j_nf4_weight blocksize(int v);

    public native int dtype();

    public native lora4j_nf4_weight dtype(int v);

    public native @Cast("const uint8_t*") BytePointer codes();

    public native lora4j_nf4_weight codes(BytePointer v);

    public native @Cast("const float*") FloatPointer code_table();

    public native lora4j_nf4_weight code_table(FloatPointer v);

    public native @Cast("const float*") FloatPointer absmax();

    public native lora4j_nf4_weight absmax(FloatPointer v);

    public native @Cast("const uint8_t*") BytePointer absmax_codes();

    public native lora4j_nf4_weight absmax_codes(BytePointer v);

    public native @Cast("const float*") FloatPointer nested_table();

    public native lora4j_nf4_weight nested_table(FloatPointer v);

    public native @Cast("const float*") FloatPointer nested_absmax();

    public native lora4j_nf4_weight nested_absmax(FloatPointer v);

    public native int nested_blocksize();

    public native lora4j_nf4_weight nested_blocksize(int v);

    public native float offset();

    public native lora4j_nf4_weight offset(float v);
  }

  public static native @Cast("const char*") BytePointer lora4j_last_error();

  public static native int lora4j_version(IntPointer major, IntPointer minor, IntPointer patch);

  public static native int lora4j_cuda_available(
      IntPointer available, @Cast("char*") BytePointer reason, int reasonCap);

  public static native int lora4j_cuda_set_library(@Cast("const char*") BytePointer path);

  public static native int lora4j_weight_count(
      @Const lora4j_model_config config, @Cast("int32_t*") int[] count);

  public static native int lora4j_weight_info(
      @Const lora4j_model_config config,
      int index,
      @Cast("char*") BytePointer name,
      int nameCap,
      @Cast("int32_t*") int[] ndim,
      @Cast("int64_t*") long[] shape,
      @Cast("int32_t*") int[] layer,
      @Cast("int32_t*") int[] slot);

  public static native int lora4j_engine_create(
      @Const lora4j_model_config config,
      @Const lora4j_engine_options options,
      @ByPtrPtr lora4j_engine out);

  public static native int lora4j_engine_destroy(lora4j_engine engine);

  public static native int lora4j_engine_set_weight(
      lora4j_engine engine,
      @Cast("const char*") BytePointer name,
      int dtype,
      @Const Pointer data,
      long numel);

  public static native int lora4j_engine_set_weight_nf4(
      lora4j_engine engine, @Cast("const char*") BytePointer name, @Const lora4j_nf4_weight weight);

  public static native int lora4j_nf4_dequantize(@Const lora4j_nf4_weight weight, FloatPointer out);

  public static native int lora4j_engine_get_weight(
      lora4j_engine engine, @Cast("const char*") BytePointer name, FloatPointer out, long numel);

  public static native int lora4j_engine_memory(
      lora4j_engine engine,
      @Cast("int64_t*") LongPointer inUse,
      @Cast("int64_t*") LongPointer peak);

  public static native int lora4j_lora_attach(
      lora4j_engine engine, int rank, float scale, @Cast("uint32_t") int targets);

  public static native int lora4j_lora_detach(lora4j_engine engine);

  public static native int lora4j_lora_count(lora4j_engine engine, IntPointer count);

  public static native int lora4j_lora_info(
      lora4j_engine engine,
      int index,
      @Cast("char*") BytePointer name,
      int nameCap,
      @Cast("int64_t*") LongPointer rows,
      @Cast("int64_t*") LongPointer cols);

  public static native int lora4j_lora_get(
      lora4j_engine engine,
      int kind,
      @Cast("const char*") BytePointer name,
      FloatPointer out,
      long numel);

  public static native int lora4j_lora_set(
      lora4j_engine engine,
      int kind,
      @Cast("const char*") BytePointer name,
      int dtype,
      @Const Pointer data,
      long numel);

  public static native int lora4j_optimizer_get_step(
      lora4j_engine engine, @Cast("int64_t*") LongPointer step);

  public static native int lora4j_optimizer_set_step(lora4j_engine engine, long step);

  public static native int lora4j_lora_merge(lora4j_engine engine);

  public static native int lora4j_zero_grad(lora4j_engine engine);

  public static native int lora4j_forward_backward(
      lora4j_engine engine,
      @Const lora4j_batch batch,
      float gradScale,
      double[] lossSum,
      @Cast("int64_t*") long[] tokens);

  public static native int lora4j_grad_norm(lora4j_engine engine, double[] norm);

  public static native int lora4j_optimizer_step(
      lora4j_engine engine, @Const lora4j_adamw adamw, lora4j_step_result result);

  public static native int lora4j_train_step(
      lora4j_engine engine,
      @Const lora4j_batch batch,
      @Const lora4j_adamw adamw,
      double[] loss,
      lora4j_step_result result);

  public static native int lora4j_eval_loss(
      lora4j_engine engine,
      @Const lora4j_batch batch,
      double[] lossSum,
      @Cast("int64_t*") long[] tokens);

  public static native int lora4j_logits(
      lora4j_engine engine, @Const lora4j_batch batch, FloatPointer out, long numel);

  public static native int lora4j_hidden_states(
      lora4j_engine engine, @Const lora4j_batch batch, FloatPointer out, long numel);

  public static native int lora4j_decode_start(
      lora4j_engine engine, @Cast("const int32_t*") int[] prompt, int length, float[] logits);

  public static native int lora4j_decode_next(lora4j_engine engine, int token, float[] logits);

  public static native int lora4j_decode_greedy(
      lora4j_engine engine,
      int token,
      int count,
      int eosId,
      @Cast("int32_t*") int[] out,
      @Cast("int32_t*") int[] produced);

  public static native int lora4j_decode_sample(
      lora4j_engine engine,
      int token,
      int count,
      int eosId,
      double temperature,
      int topK,
      double topP,
      @Cast("int64_t*") long[] state,
      @Cast("int32_t*") int[] out,
      @Cast("int32_t*") int[] produced);

  public static native int lora4j_sample(
      @Cast("const float*") float[] logits,
      int n,
      double temperature,
      int topK,
      double topP,
      @Cast("int64_t*") long[] state,
      @Cast("int32_t*") int[] token);

  public static native int lora4j_generate_greedy(
      lora4j_engine engine,
      @Cast("const int32_t*") int[] prompt,
      int length,
      int maxNew,
      int eosId,
      @Cast("int32_t*") int[] out,
      @Cast("int32_t*") int[] produced);

  // ---- gradients as one buffer, robust aggregation, collectives ------------------------------

  public static native int lora4j_grad_flat_numel(
      lora4j_engine engine, @Cast("int64_t*") long[] numel);

  public static native int lora4j_grad_get_flat(lora4j_engine engine, FloatPointer out, long numel);

  public static native int lora4j_grad_set_flat(
      lora4j_engine engine, @Const FloatPointer data, long numel);

  public static native int lora4j_aggregate(
      int rule,
      int f,
      int n,
      long numel,
      @Const FloatPointer workers,
      @Const FloatPointer weights,
      FloatPointer out,
      @Cast("int32_t*") int[] selected);

  public static native int lora4j_dist_unique_id(@Cast("uint8_t*") byte[] id, int idBytes);

  public static native int lora4j_dist_init(
      lora4j_engine engine, @Cast("const uint8_t*") byte[] id, int idBytes, int world, int rank);

  public static native int lora4j_dist_allreduce_grad(lora4j_engine engine);

  public static native int lora4j_dist_allgather_grad(
      lora4j_engine engine, FloatPointer out, long numel);

  public static native int lora4j_dist_allreduce_f64(
      lora4j_engine engine, double[] values, int count);

  // ---- worker rows of robust aggregation (on the engine's device) ----------------------------

  public static final int LORA4J_MAX_WORKERS = 64;

  public static native int lora4j_workers_reserve(lora4j_engine engine, int rows);

  public static native int lora4j_workers_gather(lora4j_engine engine, int first);

  public static native int lora4j_workers_read(
      lora4j_engine engine, int first, int count, FloatPointer out);

  public static native int lora4j_workers_write(
      lora4j_engine engine, int first, int count, @Const FloatPointer data);

  public static native int lora4j_workers_aggregate(
      lora4j_engine engine,
      int rule,
      int f,
      int n,
      @Const FloatPointer weights,
      @Cast("int32_t*") int[] selected);

  public static native int lora4j_dist_reduce_in_backward(lora4j_engine engine, int on);

  public static native int lora4j_dist_abort(
      lora4j_engine engine, @Cast("const char*") BytePointer reason);
}
