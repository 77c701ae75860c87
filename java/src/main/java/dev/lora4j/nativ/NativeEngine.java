package dev.lora4j.nativ;

import static dev.lora4j.nativ.Lora4jLibrary.*;

import dev.lora4j.Batch;
import dev.lora4j.LossSum;
import dev.lora4j.StepResult;
import dev.lora4j.model.MistralConfig;
import dev.lora4j.model.nf4.Nf4Tensor;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.FloatBuffer;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import org.bytedeco.javacpp.BytePointer;
import org.bytedeco.javacpp.FloatPointer;
import org.bytedeco.javacpp.IntPointer;
import org.bytedeco.javacpp.LongPointer;
import org.bytedeco.javacpp.Pointer;

/**
 * Owner of one native engine handle: a Mistral decoder on one device with frozen weights, an
 * optional LoRA adapter and its optimizer state. Every method maps one function of lora4j.h and
 * turns a non-zero status into a {@link NativeException} carrying the core's message.
 *
 * <p>Methods are synchronized: one engine runs one call at a time, so two threads sharing it get
 * correct results in some order. After {@link #close()} every method throws {@link
 * IllegalStateException}; closing twice is harmless.
 */
public final class NativeEngine implements AutoCloseable {
  /** Shapes handed to the engine at creation. */
  public record Shape(
      int vocabSize,
      int hiddenSize,
      int intermediateSize,
      int numLayers,
      int numHeads,
      int numKvHeads,
      int headDim,
      int slidingWindow,
      int maxSeqLen,
      float rmsNormEps,
      double ropeTheta) {
    /** The shape of a model config, for sequences of up to maxSeqLen positions. */
    public static Shape of(MistralConfig c, int maxSeqLen) {
      return new Shape(
          c.vocabSize(),
          c.hiddenSize(),
          c.intermediateSize(),
          c.numHiddenLayers(),
          c.numAttentionHeads(),
          c.numKeyValueHeads(),
          c.headDim(),
          c.slidingWindow() == null ? 0 : c.slidingWindow(),
          maxSeqLen,
          (float) c.rmsNormEps(),
          c.ropeTheta());
    }
  }

  /**
   * One frozen weight as the core defines it ({@code lora4j_weight_info}): Hugging Face name, shape
   * ([rows] for the norm weights, [out, in] for projections), decoder layer (-1 outside the layers)
   * and slot ({@code LORA4J_SLOT_*}).
   */
  public record WeightSpec(String name, long[] shape, int layer, int slot) {}

  /** One LoRA tensor as the engine lays it out: PEFT key name and shape. */
  public record LoraTensor(String name, long rows, long cols) {
    public long numel() {
      return rows * cols;
    }
  }

  /** AdamW settings (torch semantics) with global-norm clipping; maxGradNorm <= 0: none. */
  public record AdamW(
      float lr, float beta1, float beta2, float eps, float weightDecay, float maxGradNorm) {}

  private final Shape shape;
  private final int device;
  private lora4j_engine handle;

  /** The handle for {@link #distAbort}, which does not take the engine's lock; null once closed. */
  private final Object abortLock = new Object();

  private lora4j_engine abortHandle;

  private NativeEngine(Shape shape, int device, lora4j_engine handle) {
    this.shape = shape;
    this.device = device;
    this.handle = handle;
    this.abortHandle = handle;
  }

  /**
   * Creates an engine. device is {@link Lora4jLibrary#LORA4J_DEVICE_CPU} or {@link
   * Lora4jLibrary#LORA4J_DEVICE_CUDA}; threads 0 means all hardware threads (CPU only).
   */
  public static NativeEngine create(
      Shape s, int device, int deviceIndex, int threads, int recompute) {
    return create(s, device, deviceIndex, threads, recompute, false);
  }

  /**
   * As {@link #create(Shape, int, int, int, int)}; offloadCheckpoints: with recompute, what the
   * backward keeps of each layer waits in pinned host memory (lora4j.h, offload_checkpoints).
   */
  public static NativeEngine create(
      Shape s,
      int device,
      int deviceIndex,
      int threads,
      int recompute,
      boolean offloadCheckpoints) {
    NativeLibrary.ensureLoaded();
    try (lora4j_model_config c = config(s);
        lora4j_engine_options o = new lora4j_engine_options()) {
      o.device(device)
          .device_index(deviceIndex)
          .num_threads(threads)
          .recompute(recompute)
          .offload_checkpoints(offloadCheckpoints ? 1 : 0);
      lora4j_engine h = new lora4j_engine();
      check(lora4j_engine_create(c, o, h));
      return new NativeEngine(s, device, h);
    }
  }

  /**
   * The frozen weights of a model of this shape, in the core's order, as the core defines them (no
   * engine is created). A shape the core refuses is a {@link NativeException} naming the key.
   */
  public static List<WeightSpec> weightSpecs(Shape s) {
    NativeLibrary.ensureLoaded();
    List<WeightSpec> out = new ArrayList<>();
    try (lora4j_model_config c = config(s);
        BytePointer name = new BytePointer(512)) {
      int[] count = new int[1];
      check(lora4j_weight_count(c, count));
      int[] ndim = new int[1], layer = new int[1], slot = new int[1];
      long[] dims = new long[2];
      for (int i = 0; i < count[0]; i++) {
        check(lora4j_weight_info(c, i, name, 512, ndim, dims, layer, slot));
        out.add(
            new WeightSpec(
                cString(name), java.util.Arrays.copyOf(dims, ndim[0]), layer[0], slot[0]));
      }
    }
    return out;
  }

  private static lora4j_model_config config(Shape s) {
    lora4j_model_config c = new lora4j_model_config();
    c.vocab_size(s.vocabSize())
        .hidden_size(s.hiddenSize())
        .intermediate_size(s.intermediateSize())
        .num_layers(s.numLayers())
        .num_heads(s.numHeads())
        .num_kv_heads(s.numKvHeads())
        .head_dim(s.headDim())
        .sliding_window(s.slidingWindow())
        .max_seq_len(s.maxSeqLen())
        .rms_norm_eps(s.rmsNormEps())
        .rope_theta(s.ropeTheta());
    return c;
  }

  public Shape shape() {
    return shape;
  }

  /** {@link Lora4jLibrary#LORA4J_DEVICE_CPU} or {@link Lora4jLibrary#LORA4J_DEVICE_CUDA}. */
  public int device() {
    return device;
  }

  static void check(int status) {
    if (status != LORA4J_OK) {
      String msg = lora4j_last_error().getString(StandardCharsets.UTF_8);
      if (msg.isEmpty()) msg = NativeException.statusName(status);
      throw new NativeException(status, msg);
    }
  }

  private lora4j_engine h() {
    if (handle == null) throw new IllegalStateException("engine is closed");
    return handle;
  }

  // ---- weights ---------------------------------------------------------------------------

  /**
   * Copies one frozen weight into the engine. data holds numel values of dtype ({@link
   * Lora4jLibrary#LORA4J_DTYPE_BF16}, F16 or F32), little-endian; a direct or heap buffer.
   */
  public synchronized void setWeight(String name, int dtype, ByteBuffer data, long numel) {
    lora4j_engine e = h();
    try (BytePointer n = new BytePointer(name);
        Pointer p = toPointer(data)) {
      check(lora4j_engine_set_weight(e, n, dtype, p, numel));
    }
  }

  /**
   * Gives one projection weight to the engine in NF4 (bitsandbytes' layout); the engine computes
   * with exactly {@link #dequantize(Nf4Tensor)}'s values.
   */
  public synchronized void setWeightNf4(String name, Nf4Tensor t) {
    lora4j_engine e = h();
    try (BytePointer n = new BytePointer(name);
        Nf4Native w = new Nf4Native(t)) {
      check(lora4j_engine_set_weight_nf4(e, n, w.weight));
    }
  }

  /** The dequantized weight as the core computes it (lora4j_nf4_dequantize). */
  public static float[] dequantize(Nf4Tensor t) {
    NativeLibrary.ensureLoaded();
    try (Nf4Native w = new Nf4Native(t);
        FloatPointer out = new FloatPointer(t.numel())) {
      check(lora4j_nf4_dequantize(w.weight, out));
      float[] r = new float[Math.toIntExact(t.numel())];
      out.get(r);
      return r;
    }
  }

  /** A lora4j_nf4_weight over native copies of a tensor's arrays, freed on close. */
  private static final class Nf4Native implements AutoCloseable {
    final lora4j_nf4_weight weight = new lora4j_nf4_weight();
    private final List<Pointer> owned = new ArrayList<>();

    Nf4Native(Nf4Tensor t) {
      weight.numel(t.numel()).blocksize(t.blocksize()).dtype(dtypeCode(t.dtype()));
      weight.codes(own(new BytePointer(t.codes())));
      weight.code_table(own(new FloatPointer(t.table())));
      if (t.isNested()) {
        weight
            .absmax_codes(own(new BytePointer(t.absmaxCodes())))
            .nested_table(own(new FloatPointer(t.nestedTable())))
            .nested_absmax(own(new FloatPointer(t.nestedAbsmax())))
            .nested_blocksize(t.nestedBlocksize())
            .offset(t.offset());
      } else {
        weight.absmax(own(new FloatPointer(t.absmax())));
      }
    }

    private <P extends Pointer> P own(P p) {
      owned.add(p);
      return p;
    }

    private static int dtypeCode(dev.lora4j.safetensors.DType d) {
      return switch (d) {
        case BF16 -> LORA4J_DTYPE_BF16;
        case F16 -> LORA4J_DTYPE_F16;
        case F32 -> LORA4J_DTYPE_F32;
        default ->
            throw new IllegalArgumentException("NF4 weights round to BF16, F16 or F32, not " + d);
      };
    }

    @Override
    public void close() {
      for (Pointer p : owned) p.close();
      weight.close();
    }
  }

  /** Reads a frozen weight back as fp32. */
  public synchronized float[] getWeight(String name, long numel) {
    lora4j_engine e = h();
    try (BytePointer n = new BytePointer(name);
        FloatPointer out = new FloatPointer(numel)) {
      check(lora4j_engine_get_weight(e, n, out, numel));
      float[] r = new float[Math.toIntExact(numel)];
      out.get(r);
      return r;
    }
  }

  /** Bytes held by the engine now ([0]) and at peak ([1]). */
  public synchronized long[] memory() {
    lora4j_engine e = h();
    try (LongPointer a = new LongPointer(1);
        LongPointer b = new LongPointer(1)) {
      check(lora4j_engine_memory(e, a, b));
      return new long[] {a.get(), b.get()};
    }
  }

  // ---- adapter ---------------------------------------------------------------------------

  public synchronized void loraAttach(int rank, float scale, int targetBits) {
    check(lora4j_lora_attach(h(), rank, scale, targetBits));
  }

  public synchronized void loraDetach() {
    check(lora4j_lora_detach(h()));
  }

  /** The LoRA tensors of the attached adapter in the engine's order; empty when none. */
  public synchronized List<LoraTensor> loraTensors() {
    lora4j_engine e = h();
    List<LoraTensor> out = new ArrayList<>();
    try (IntPointer count = new IntPointer(1);
        BytePointer name = new BytePointer(512);
        LongPointer rows = new LongPointer(1);
        LongPointer cols = new LongPointer(1)) {
      check(lora4j_lora_count(e, count));
      for (int i = 0; i < count.get(); i++) {
        check(lora4j_lora_info(e, i, name, 512, rows, cols));
        out.add(new LoraTensor(cString(name), rows.get(), cols.get()));
      }
    }
    return out;
  }

  /** Reads one state tensor (LORA4J_STATE_PARAM, _GRAD, _EXP_AVG, _EXP_AVG_SQ). */
  public synchronized float[] loraGet(int kind, String name, int numel) {
    lora4j_engine e = h();
    try (BytePointer n = new BytePointer(name);
        FloatPointer out = new FloatPointer(numel)) {
      check(lora4j_lora_get(e, kind, n, out, numel));
      float[] r = new float[numel];
      out.get(r);
      return r;
    }
  }

  /** Writes one state tensor from fp32 values. */
  public synchronized void loraSet(int kind, String name, float[] values) {
    lora4j_engine e = h();
    try (BytePointer n = new BytePointer(name);
        FloatPointer p = new FloatPointer(values)) {
      check(lora4j_lora_set(e, kind, n, LORA4J_DTYPE_F32, p, values.length));
    }
  }

  public synchronized long optimizerStep() {
    try (LongPointer s = new LongPointer(1)) {
      check(lora4j_optimizer_get_step(h(), s));
      return s.get();
    }
  }

  public synchronized void setOptimizerStep(long step) {
    check(lora4j_optimizer_set_step(h(), step));
  }

  /** Folds the adapter into the frozen weights and detaches it. */
  public synchronized void loraMerge() {
    check(lora4j_lora_merge(h()));
  }

  // ---- training --------------------------------------------------------------------------

  public synchronized void zeroGrad() {
    check(lora4j_zero_grad(h()));
  }

  /** Forward and backward; adds gradScale * d(sum of token losses) to the gradients. */
  public synchronized LossSum forwardBackward(Batch batch, float gradScale) {
    lora4j_engine e = h();
    double[] loss = new double[1];
    long[] tokens = new long[1];
    try (BoundBatch b = new BoundBatch(batch)) {
      check(lora4j_forward_backward(e, b.struct(), gradScale, loss, tokens));
    }
    return new LossSum(loss[0], tokens[0]);
  }

  /** Global L2 norm of the accumulated gradients, nothing applied. */
  public synchronized double gradNorm() {
    double[] n = new double[1];
    check(lora4j_grad_norm(h(), n));
    return n[0];
  }

  /**
   * Clips, checks finiteness and applies AdamW to the accumulated gradients, then zeroes them.
   * accumulated: the loss sum and label tokens of the forward-backward passes that made these
   * gradients, carried into the result.
   */
  public synchronized StepResult optimizerStep(AdamW a, LossSum accumulated) {
    lora4j_engine e = h();
    try (lora4j_adamw p = adamw(a);
        lora4j_step_result r = new lora4j_step_result()) {
      check(lora4j_optimizer_step(e, p, r));
      return new StepResult(
          accumulated.mean(), r.grad_norm(), r.applied() != 0, r.step(), accumulated.tokens());
    }
  }

  // ---- the gradients as one buffer, aggregation, collectives ----------------------------------

  /** Elements of the flat gradient arena (an adapter must be attached). */
  public synchronized long gradFlatNumel() {
    long[] n = new long[1];
    check(lora4j_grad_flat_numel(h(), n));
    return n[0];
  }

  /** Copies the accumulated gradients into out (direct, from index 0, numel values). */
  public synchronized void gradGetFlat(FloatBuffer out, long numel) {
    checkDirect(out, numel, "out");
    check(lora4j_grad_get_flat(h(), new FloatPointer(out), numel));
  }

  /** Replaces the accumulated gradients with data (direct, from index 0, numel values). */
  public synchronized void gradSetFlat(FloatBuffer data, long numel) {
    checkDirect(data, numel, "data");
    check(lora4j_grad_set_flat(h(), new FloatPointer(data), numel));
  }

  /**
   * {@code lora4j_aggregate}: rule LORA4J_AGG_* over n rows of numel values in workers (direct,
   * from index 0) into out (direct); weights may be null. Returns Krum's worker, else -1.
   */
  public static int aggregate(
      int rule, int f, int n, long numel, FloatBuffer workers, float[] weights, FloatBuffer out) {
    NativeLibrary.ensureLoaded();
    checkDirect(workers, (long) n * numel, "workers");
    checkDirect(out, numel, "out");
    if (weights != null && weights.length != n) {
      throw new IllegalArgumentException(
          "weights has " + weights.length + " values for " + n + " workers");
    }
    int[] selected = {-1};
    try (FloatPointer w = weights == null ? null : new FloatPointer(weights)) {
      check(
          lora4j_aggregate(
              rule, f, n, numel, new FloatPointer(workers), w, new FloatPointer(out), selected));
    }
    return selected[0];
  }

  /** A new unique id for a collective group (the CUDA backend's NCCL). */
  public static byte[] distUniqueId() {
    NativeLibrary.ensureLoaded();
    byte[] id = new byte[LORA4J_DIST_ID_BYTES];
    check(lora4j_dist_unique_id(id, id.length));
    return id;
  }

  /** Joins a group of world ranks as rank (id: null for a group of one). */
  public synchronized void distInit(byte[] id, int world, int rank) {
    check(lora4j_dist_init(h(), id, id == null ? 0 : id.length, world, rank));
  }

  /** The accumulated gradients become their sum over the group. */
  public synchronized void distAllreduceGrad() {
    check(lora4j_dist_allreduce_grad(h()));
  }

  /**
   * Every rank's accumulated gradients into out (direct): rank r's numel values at index offset + r
   * * numel.
   */
  public synchronized void distAllgatherGrad(FloatBuffer out, long offset, long numel, int world) {
    checkDirect(out, offset + (long) world * numel, "out");
    FloatPointer p = new FloatPointer(out);
    check(lora4j_dist_allgather_grad(h(), p.position(offset), numel));
  }

  /** values become their sums over the group. */
  public synchronized void distAllreduceF64(double[] values) {
    check(lora4j_dist_allreduce_f64(h(), values, values.length));
  }

  /** Room for rows worker gradients where the engine keeps its gradients (0 frees it). */
  public synchronized void workersReserve(int rows) {
    check(lora4j_workers_reserve(h(), rows));
  }

  /** Every rank's accumulated gradients into worker rows first + rank (a collective). */
  public synchronized void workersGather(int first) {
    check(lora4j_workers_gather(h(), first));
  }

  /** Worker rows first .. first + count - 1 into out (direct, from index 0). */
  public synchronized void workersRead(int first, int count, FloatBuffer out, long numel) {
    checkDirect(out, (long) count * numel, "out");
    check(lora4j_workers_read(h(), first, count, new FloatPointer(out)));
  }

  /** Worker rows first .. first + count - 1 from data (direct, from index 0). */
  public synchronized void workersWrite(int first, int count, FloatBuffer data, long numel) {
    checkDirect(data, (long) count * numel, "data");
    check(lora4j_workers_write(h(), first, count, new FloatPointer(data)));
  }

  /**
   * The rule over worker rows 0 .. n - 1 into the accumulated gradients; weights may be null.
   * Returns Krum's worker, else -1.
   */
  public synchronized int workersAggregate(int rule, int f, int n, float[] weights) {
    if (weights != null && weights.length != n) {
      throw new IllegalArgumentException(
          "weights has " + weights.length + " values for " + n + " workers");
    }
    int[] selected = {-1};
    try (FloatPointer w = weights == null ? null : new FloatPointer(weights)) {
      check(lora4j_workers_aggregate(h(), rule, f, n, w, selected));
    }
    return selected[0];
  }

  /**
   * on: the next {@link #forwardBackward} also sums the accumulated gradients over the group during
   * its backward (bucket by bucket, overlapped with it); the {@link #distAllreduceGrad} that
   * follows only waits for it. A group of one ignores it.
   */
  public synchronized void distReduceInBackward(boolean on) {
    check(lora4j_dist_reduce_in_backward(h(), on ? 1 : 0));
  }

  /**
   * Aborts the group: the collective another thread may be waiting in, and every later one, fail
   * with a {@link NativeException} whose message contains reason. Unlike the other methods this one
   * does not wait for the engine's current call (it is how a thread that learnt of a lost rank
   * frees the one stuck in a collective); after {@link #close} it does nothing.
   */
  public void distAbort(String reason) {
    synchronized (abortLock) {
      if (abortHandle == null) return;
      try (BytePointer r = new BytePointer(reason, StandardCharsets.UTF_8)) {
        check(lora4j_dist_abort(abortHandle, r));
      }
    }
  }

  private static void checkDirect(FloatBuffer b, long numel, String what) {
    if (b == null || !b.isDirect())
      throw new IllegalArgumentException(what + " must be a direct FloatBuffer");
    if (b.capacity() < numel) {
      throw new IllegalArgumentException(
          what + " holds " + b.capacity() + " values, " + numel + " needed");
    }
  }

  private static lora4j_adamw adamw(AdamW a) {
    lora4j_adamw p = new lora4j_adamw();
    p.lr(a.lr())
        .beta1(a.beta1())
        .beta2(a.beta2())
        .eps(a.eps())
        .weight_decay(a.weightDecay())
        .max_grad_norm(a.maxGradNorm());
    return p;
  }

  // ---- inference -------------------------------------------------------------------------

  public synchronized LossSum evalLoss(Batch batch) {
    lora4j_engine e = h();
    double[] loss = new double[1];
    long[] tokens = new long[1];
    try (BoundBatch b = new BoundBatch(batch)) {
      check(lora4j_eval_loss(e, b.struct(), loss, tokens));
    }
    return new LossSum(loss[0], tokens[0]);
  }

  /** The largest Java array the JVMs in use allocate (a few words under Integer.MAX_VALUE). */
  static final long MAX_ARRAY = Integer.MAX_VALUE - 8;

  /**
   * n, checked before any work against a Java array's limit (a result over it would be computed and
   * then fail to fit its float[]).
   */
  static long arrayLength(long n, String what) {
    if (n > MAX_ARRAY) {
      throw new IllegalArgumentException(
          what
              + " would be "
              + n
              + " floats, more than a Java array holds ("
              + MAX_ARRAY
              + "): pass fewer rows or shorter sequences");
    }
    return n;
  }

  /** Logits [batch * seq * vocab] fp32. */
  public synchronized float[] logits(Batch batch) {
    lora4j_engine e = h();
    long n =
        arrayLength(
            (long) batch.rows() * batch.seq() * shape.vocabSize(), "logits (rows x seq x vocab)");
    try (BoundBatch b = new BoundBatch(batch);
        FloatPointer out = new FloatPointer(n)) {
      check(lora4j_logits(e, b.struct(), out, n));
      float[] r = new float[Math.toIntExact(n)];
      out.get(r);
      return r;
    }
  }

  /** Hidden states [(layers + 1) * batch * seq * hidden] fp32 (Hugging Face convention). */
  public synchronized float[] hiddenStates(Batch batch) {
    lora4j_engine e = h();
    long n =
        arrayLength(
            (long) (shape.numLayers() + 1) * batch.rows() * batch.seq() * shape.hiddenSize(),
            "hidden states ((layers + 1) x rows x seq x hidden)");
    try (BoundBatch b = new BoundBatch(batch);
        FloatPointer out = new FloatPointer(n)) {
      check(lora4j_hidden_states(e, b.struct(), out, n));
      float[] r = new float[Math.toIntExact(n)];
      out.get(r);
      return r;
    }
  }

  /** Runs the prompt into a fresh KV cache; returns the logits of its last position. */
  public synchronized float[] decodeStart(int[] prompt) {
    float[] logits = new float[shape.vocabSize()];
    check(lora4j_decode_start(h(), prompt, prompt.length, logits));
    return logits;
  }

  /** Appends one token to the KV cache; returns the next logits. */
  public synchronized float[] decodeNext(int token) {
    float[] logits = new float[shape.vocabSize()];
    check(lora4j_decode_next(h(), token, logits));
    return logits;
  }

  /**
   * Greedy decoding of up to count tokens after a decodeStart: appends token, takes the argmax of
   * the logits (the lowest index among equal maxima), appends it, and so on; stops after eosId
   * (negative: never). The last token returned is not yet in the cache (the next call's token).
   */
  public synchronized int[] decodeGreedy(int token, int count, int eosId) {
    int[] out = new int[Math.max(count, 0)];
    int[] produced = new int[1];
    check(lora4j_decode_greedy(h(), token, count, eosId, out, produced));
    return java.util.Arrays.copyOf(out, produced[0]);
  }

  /**
   * Sampled decoding of up to count tokens after a decodeStart, as decodeGreedy but each token
   * drawn as {@link dev.lora4j.Sampler} draws it with temperature, topK, topP and rng, whose state
   * the core advances and this call sets back (the next draw continues the same sequence).
   */
  public synchronized int[] decodeSample(
      int token,
      int count,
      int eosId,
      double temperature,
      int topK,
      double topP,
      dev.lora4j.SplitMix64 rng) {
    int[] out = new int[Math.max(count, 0)];
    int[] produced = new int[1];
    long[] state = {rng.state()};
    check(
        lora4j_decode_sample(
            h(), token, count, eosId, temperature, topK, topP, state, out, produced));
    rng.setState(state[0]);
    return java.util.Arrays.copyOf(out, produced[0]);
  }

  /**
   * One token drawn by the core's sampler (lora4j_sample) from logits, advancing rng as {@link
   * dev.lora4j.Sampler#sample} would.
   */
  public static int sample(
      float[] logits, double temperature, int topK, double topP, dev.lora4j.SplitMix64 rng) {
    long[] state = {rng.state()};
    int[] token = new int[1];
    check(lora4j_sample(logits, logits.length, temperature, topK, topP, state, token));
    rng.setState(state[0]);
    return token[0];
  }

  /** Greedy decoding in the core; stops after eosId (negative: never). */
  public synchronized int[] generateGreedy(int[] prompt, int maxNew, int eosId) {
    int[] out = new int[Math.max(maxNew, 0)];
    int[] produced = new int[1];
    check(lora4j_generate_greedy(h(), prompt, prompt.length, maxNew, eosId, out, produced));
    return java.util.Arrays.copyOf(out, produced[0]);
  }

  @Override
  public synchronized void close() {
    synchronized (abortLock) {
      abortHandle = null;
    }
    if (handle != null) {
      lora4j_engine_destroy(handle);
      handle = null;
    }
  }

  public synchronized boolean isClosed() {
    return handle == null;
  }

  /** The NUL-terminated string in a buffer (JavaCPP reads up to the limit otherwise). */
  static String cString(BytePointer p) {
    long cap = p.capacity();
    String s = p.limit(0).getString(StandardCharsets.UTF_8);
    p.limit(cap);
    return s;
  }

  private static Pointer toPointer(ByteBuffer data) {
    if (data.isDirect()) {
      return new BytePointer(data.slice().order(ByteOrder.LITTLE_ENDIAN));
    }
    ByteBuffer src = data.slice();
    BytePointer p = new BytePointer(src.remaining());
    byte[] tmp = new byte[Math.min(src.remaining(), 1 << 20)];
    long pos = 0;
    while (src.hasRemaining()) {
      int n = Math.min(tmp.length, src.remaining());
      src.get(tmp, 0, n);
      p.position(pos).put(tmp, 0, n);
      pos += n;
    }
    return p.position(0);
  }
}
