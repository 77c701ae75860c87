package dev.lora4j;

import dev.lora4j.data.ChatEncoder;
import dev.lora4j.data.DataException;
import dev.lora4j.data.TemplateChatEncoder;
import dev.lora4j.data.TextEncoder;
import dev.lora4j.data.TokenizerTextEncoder;
import dev.lora4j.io.OutputFolder;
import dev.lora4j.model.MistralConfig;
import dev.lora4j.model.ModelLayout;
import dev.lora4j.model.nf4.Bnb4bit;
import dev.lora4j.model.nf4.Nf4;
import dev.lora4j.model.peft.AdapterConfig;
import dev.lora4j.model.peft.LoraAdapter;
import dev.lora4j.model.peft.LoraTarget;
import dev.lora4j.nativ.Lora4jLibrary;
import dev.lora4j.nativ.NativeEngine;
import dev.lora4j.nativ.NativeException;
import dev.lora4j.safetensors.Checkpoint;
import dev.lora4j.safetensors.DType;
import dev.lora4j.safetensors.SafetensorsException;
import dev.lora4j.tokenizer.Tokenizer;
import java.nio.FloatBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Set;

/**
 * A Mistral model loaded on a device, with at most one LoRA adapter attached: the low-level API
 * under {@link LoraTrainer}. It owns the native engine; close it to free the device memory.
 *
 * <pre>{@code
 * try (MistralModel m = MistralModel.load(Path.of("mistral-7b"), Device.auto())) {
 *   m.attachNewAdapter(LoraConfig.builder().rank(16).alpha(16).build(), 42);
 *   StepResult r = m.trainStep(batch, AdamWConfig.defaults().withLr(2e-4));
 *   m.saveAdapter(Path.of("adapter"));
 * }
 * }</pre>
 */
public final class MistralModel implements AutoCloseable {
  private static final java.util.logging.Logger LOG =
      java.util.logging.Logger.getLogger(MistralModel.class.getName());

  private final Path dir;
  private final MistralConfig config;
  private final Device device;
  private final NativeEngine engine;
  private final int nf4Projections;
  private AdapterConfig adapterConfig;
  private Path adapterSource;
  private Tokenizer tokenizer;
  private ChatEncoder chatEncoder;

  /** Loss sum and label tokens of the forward-backward passes since the gradients were zeroed. */
  private LossSum accumulated = LossSum.ZERO;

  /**
   * Options of {@link #load(Path, Device, LoadOptions)}.
   *
   * @param quantization how the projection weights are held ({@link Quantization#nf4()}: 4-bit,
   *     QLoRA); a checkpoint saved by bitsandbytes in 4 bits loads in 4 bits whatever is asked
   * @param offloadCheckpoints with recompute on the GPU: what the backward keeps of each layer (its
   *     input; with {@link Recompute#SELECTIVE} also its attention output; with {@link
   *     Recompute#ATTENTION} that, q, k and v) waits in pinned host memory instead of GPU memory,
   *     copied while the next layers compute, so the GPU holds two layers' worth; the same values
   *     bit for bit. Costs that much host memory (2 x rows x hidden bytes per layer, plus 2 x rows
   *     x heads x head_dim with SELECTIVE, and again that plus k and v with ATTENTION). Needs a
   *     recompute mode: {@link #load} refuses it with {@link Recompute#NONE}
   *     (IllegalArgumentException). On the CPU, where everything is in host memory already, it
   *     changes nothing.
   */
  public record LoadOptions(
      int maxSeqLength,
      int threads,
      Recompute recompute,
      Quantization quantization,
      boolean offloadCheckpoints) {
    public LoadOptions {
      if (quantization == null) quantization = Quantization.none();
    }

    public LoadOptions(
        int maxSeqLength, int threads, Recompute recompute, Quantization quantization) {
      this(maxSeqLength, threads, recompute, quantization, false);
    }

    public LoadOptions(int maxSeqLength, int threads, Recompute recompute) {
      this(maxSeqLength, threads, recompute, Quantization.none(), false);
    }

    /** maxSeqLength 0: min(max_position_embeddings, 4096); threads 0: all cores. */
    public static LoadOptions defaults() {
      return new LoadOptions(0, 0, Recompute.NONE, Quantization.none(), false);
    }

    public LoadOptions withMaxSeqLength(int n) {
      return new LoadOptions(n, threads, recompute, quantization, offloadCheckpoints);
    }

    public LoadOptions withThreads(int n) {
      return new LoadOptions(maxSeqLength, n, recompute, quantization, offloadCheckpoints);
    }

    public LoadOptions withRecompute(Recompute r) {
      return new LoadOptions(maxSeqLength, threads, r, quantization, offloadCheckpoints);
    }

    public LoadOptions withQuantization(Quantization q) {
      return new LoadOptions(maxSeqLength, threads, recompute, q, offloadCheckpoints);
    }

    public LoadOptions withOffloadCheckpoints(boolean on) {
      return new LoadOptions(maxSeqLength, threads, recompute, quantization, on);
    }
  }

  /** Activation recompute (gradient checkpointing). */
  public enum Recompute {
    /** Keep every activation: fastest, most memory. */
    NONE,
    /** Keep each layer's input only; recompute the layer in the backward. */
    LAYER,
    /**
     * As {@link #LAYER}, but each layer's attention output and log-sum-exp are kept too, so the
     * backward re-runs every op of the layer except the attention forward: faster where attention
     * is a large part of the step (long rows), for 2 x rows x heads x head_dim bytes more per
     * layer. The CPU backend computes it as {@link #LAYER}.
     */
    SELECTIVE,
    /**
     * As {@link #SELECTIVE}, and each layer's rotated q, k and v are kept too, so the backward
     * re-runs only the norms, the o projection and the MLP: 2 x rows x (2 x heads + 2 x kv heads) x
     * head_dim bytes more per layer than {@link #LAYER}. Meant with {@link
     * LoadOptions#offloadCheckpoints()}, which holds what it keeps in host memory. The CPU backend
     * computes it as {@link #LAYER}.
     */
    ATTENTION
  }

  /** The native engine's constant for a recompute mode (lora4j.h's LORA4J_RECOMPUTE_*). */
  static int nativeRecompute(Recompute r) {
    return switch (r) {
      case NONE -> Lora4jLibrary.LORA4J_RECOMPUTE_NONE;
      case LAYER -> Lora4jLibrary.LORA4J_RECOMPUTE_LAYER;
      case SELECTIVE -> Lora4jLibrary.LORA4J_RECOMPUTE_SELECTIVE;
      case ATTENTION -> Lora4jLibrary.LORA4J_RECOMPUTE_ATTENTION;
    };
  }

  private MistralModel(
      Path dir, MistralConfig config, Device device, NativeEngine engine, int nf4Projections) {
    this.dir = dir;
    this.config = config;
    this.device = device;
    this.engine = engine;
    this.nf4Projections = nf4Projections;
  }

  /** Loads a Hugging Face model folder (config.json + safetensors) onto the device. */
  public static MistralModel load(Path dir, Device device) {
    return load(dir, device, LoadOptions.defaults());
  }

  /**
   * Loads a model folder with its projection weights held as asked: {@code Quantization.nf4()}
   * quantizes a 16-bit checkpoint to 4 bits while it loads (QLoRA).
   */
  public static MistralModel load(Path dir, Device device, Quantization quantization) {
    return load(dir, device, LoadOptions.defaults().withQuantization(quantization));
  }

  /**
   * Loads a Hugging Face model folder: config.json and model.safetensors or a sharded index. Every
   * file is validated before use; a bad folder is an exception naming the file and the tensor or
   * key.
   */
  public static MistralModel load(Path dir, Device device, LoadOptions options) {
    if (!Files.isDirectory(dir)) {
      throw new Lora4jException("model folder " + dir + " does not exist or is not a folder");
    }
    if (!Files.isReadable(dir) || !Files.isExecutable(dir)) {
      throw new Lora4jException(
          "model folder " + dir + " cannot be read: permission denied (it needs read and execute)");
    }
    Path cfgFile = MistralConfig.fileIn(dir);
    if (options.offloadCheckpoints() && options.recompute() == Recompute.NONE) {
      throw new IllegalArgumentException(
          "LoadOptions.offloadCheckpoints needs a recompute mode (Recompute.LAYER, SELECTIVE or"
              + " ATTENTION): without recompute every activation stays on the device and nothing"
              + " is offloaded");
    }
    MistralConfig config = MistralConfig.load(cfgFile);
    Bnb4bit.Config bnb = Bnb4bit.readConfig(cfgFile);
    try (Checkpoint ckpt = Checkpoint.open(dir)) {
      // the projections bitsandbytes stored in 4 bits (a skipped module stays 16-bit)
      Set<String> projections = projectionNames(config);
      refuseOther4bit(projections, ckpt);
      Set<String> quantized = quantizedWeights(config, ckpt, bnb != null);
      Set<String> names = checkWeights(config, ckpt, quantized);
      Quantization q = options.quantization();
      // config.json asks for 4 bits but every projection is stored in 16: quantized on load, as
      // transformers' from_pretrained does with such a folder (it loaded in 16 bits silently)
      if (bnb != null && quantized.isEmpty() && !q.isNf4()) {
        q = Quantization.nf4().withDoubleQuant(bnb.doubleQuant());
        LOG.info(
            cfgFile
                + " has a 4-bit quantization_config but 16-bit weights: the projections are"
                + " quantized to NF4 while loading");
      }
      int maxSeq =
          options.maxSeqLength() > 0
              ? options.maxSeqLength()
              : Math.min(config.maxPositionEmbeddings(), 4096);
      NativeEngine engine =
          NativeEngine.create(
              NativeEngine.Shape.of(config, maxSeq),
              device.kind(),
              device.index(),
              options.threads(),
              nativeRecompute(options.recompute()),
              options.offloadCheckpoints());
      try {
        Map<String, long[]> shapes = expectedWeights(config);
        int nf4 = 0;
        for (String name : names) {
          if (quantized.contains(name)) {
            engine.setWeightNf4(name, Bnb4bit.read(ckpt, name, shapes.get(name)));
            nf4++;
          } else if (q.isNf4() && quantized.isEmpty() && projections.contains(name)) {
            // (a checkpoint bitsandbytes saved in 4 bits loads as it is: the modules it left in
            // 16 bits, llm_int8_skip_modules, stay 16-bit, as transformers keeps them)
            float[] f = ckpt.readFloat(name);
            requireFinite(ckpt, name, f, shapes.get(name));
            engine.setWeightNf4(
                name,
                Nf4.quantize(
                    f, shapes.get(name), ckpt.dtype(name), q.blocksize(), q.doubleQuant()));
            nf4++;
          } else {
            try {
              engine.setWeight(
                  name,
                  nativeDtype(ckpt.dtype(name)),
                  ckpt.data(name),
                  ckpt.info(name).numElements());
            } catch (NativeException e) {
              // the core refuses a weight that is not finite (naming it and the element): the
              // file it came from is named here; any other failure (memory, device) stays as is
              if (e.status() != Lora4jLibrary.LORA4J_EINVAL) throw e;
              throw new SafetensorsException(
                  ckpt.fileOf(name).path()
                      + ": "
                      + e.getMessage().replaceFirst("^lora4j_engine_set_weight: ", ""),
                  e);
            }
          }
        }
        return new MistralModel(dir, config, device, engine, nf4);
      } catch (RuntimeException e) {
        engine.close();
        throw e;
      }
    }
  }

  /** Refuses a weight read into Java (to be quantized) that holds a NaN or an infinity. */
  private static void requireFinite(Checkpoint ckpt, String name, float[] f, long[] shape) {
    long cols = shape.length == 2 ? shape[1] : 1;
    for (int i = 0; i < f.length; i++) {
      if (!Float.isFinite(f[i])) {
        throw new SafetensorsException(
            ckpt.fileOf(name).path()
                + ": weight '"
                + name
                + "' holds a value that is not finite ("
                + (Float.isNaN(f[i]) ? "NaN" : "infinite")
                + ") at element "
                + i
                + (shape.length == 2 ? " (row " + i / cols + ", column " + i % cols + ")" : ""));
      }
    }
  }

  /**
   * Refuses 4-bit tensors lora4j does not read: bitsandbytes' FP4 (only NF4 is), and a 4-bit
   * embedding or LM head (bitsandbytes quantizes the decoder's projections only, by default), each
   * named, instead of a shape or missing-tensor error that hides why.
   */
  static void refuseOther4bit(Set<String> projections, Checkpoint ckpt) {
    for (String n : ckpt.names()) {
      if (n.endsWith(Bnb4bit.QUANT_STATE_FP4)) {
        throw new dev.lora4j.safetensors.SafetensorsException(
            ckpt.fileOf(n).path()
                + ": tensor "
                + n
                + ": the weight is bitsandbytes FP4; lora4j reads 4-bit NF4 checkpoints only"
                + " (quantize with bnb_4bit_quant_type=\"nf4\")");
      }
      if (n.endsWith(Bnb4bit.QUANT_STATE)) {
        String w = n.substring(0, n.length() - Bnb4bit.QUANT_STATE.length());
        if (!projections.contains(w)) {
          throw new dev.lora4j.safetensors.SafetensorsException(
              ckpt.fileOf(n).path()
                  + ": tensor "
                  + w
                  + " is stored in 4 bits; lora4j reads 4-bit weights of the attention and MLP"
                  + " projections only (the embedding and LM head stay 16-bit, as bitsandbytes"
                  + " leaves them by default)");
        }
      }
    }
  }

  /**
   * The projections a checkpoint holds in bitsandbytes' 4-bit form: those with a quant state, and,
   * in a model whose config.json says it is quantized, any stored as uint8 (whose missing quant
   * state {@link Bnb4bit#read} then names).
   */
  static Set<String> quantizedWeights(MistralConfig config, Checkpoint ckpt, boolean bnbConfig) {
    Set<String> quantized = new java.util.LinkedHashSet<>();
    for (String name : projectionNames(config)) {
      if (Bnb4bit.isQuantized(ckpt, name)
          || (bnbConfig && ckpt.contains(name) && ckpt.dtype(name) == DType.U8)) {
        quantized.add(name);
      }
    }
    return quantized;
  }

  /** The names of the attention and MLP projections' weights, in the layout's order. */
  static Set<String> projectionNames(MistralConfig config) {
    Set<String> names = new java.util.LinkedHashSet<>();
    for (ModelLayout.Weight w : ModelLayout.of(config).weights()) {
      if (w.projection() != null) names.add(w.name());
    }
    return names;
  }

  /**
   * Checks every expected weight against the checkpoint (present, shape, float dtype) and returns
   * their names.
   *
   * @throws dev.lora4j.safetensors.SafetensorsException naming the first tensor missing, of another
   *     shape than config.json implies, or not of a float dtype
   */
  public static Set<String> checkWeights(MistralConfig c, Checkpoint ckpt) {
    return checkWeights(c, ckpt, Set.of());
  }

  private static final java.util.regex.Pattern LAYER_KEY =
      java.util.regex.Pattern.compile("model\\.layers\\.(\\d{1,9})\\.");

  /** The same, leaving out the 4-bit weights (validated when read: {@link Bnb4bit#read}). */
  public static Set<String> checkWeights(MistralConfig c, Checkpoint ckpt, Set<String> quantized) {
    Map<String, long[]> want = expectedWeights(c);
    // a layer past config.json's count would be left out without a word (the model then runs
    // with fewer layers than its weights hold): the config and the weights disagree
    for (String name : ckpt.names()) {
      java.util.regex.Matcher m = LAYER_KEY.matcher(name);
      if (m.lookingAt() && Long.parseLong(m.group(1)) >= c.numHiddenLayers()) {
        throw new SafetensorsException(
            ckpt.fileOf(name).path()
                + ": tensor "
                + name
                + " belongs to layer "
                + m.group(1)
                + ", but config.json's num_hidden_layers is "
                + c.numHiddenLayers()
                + ": the config and the weights disagree");
      }
    }
    for (Map.Entry<String, long[]> e : want.entrySet()) {
      String name = e.getKey();
      if (quantized.contains(name)) continue;
      if (!ckpt.contains(name)) {
        throw new SafetensorsException(
            "model folder " + ckpt.dir() + ": tensor " + name + " is missing from the checkpoint");
      }
      long[] shape = ckpt.shape(name);
      if (!java.util.Arrays.equals(shape, e.getValue())) {
        throw new SafetensorsException(
            ckpt.fileOf(name).path()
                + ": tensor "
                + name
                + " has shape "
                + java.util.Arrays.toString(shape)
                + ", config.json implies "
                + java.util.Arrays.toString(e.getValue()));
      }
      DType dt = ckpt.dtype(name);
      if (dt != DType.BF16 && dt != DType.F16 && dt != DType.F32) {
        throw new SafetensorsException(
            ckpt.fileOf(name).path()
                + ": tensor "
                + name
                + " has dtype "
                + dt
                + "; weights must be BF16, F16 or F32");
      }
    }
    return want.keySet();
  }

  /**
   * Hugging Face names and shapes of every frozen weight of a Mistral model, in the engine's order,
   * as the native core defines them ({@link ModelLayout}).
   */
  public static Map<String, long[]> expectedWeights(MistralConfig c) {
    return ModelLayout.of(c).shapes();
  }

  static int nativeDtype(DType dt) {
    return switch (dt) {
      case BF16 -> Lora4jLibrary.LORA4J_DTYPE_BF16;
      case F16 -> Lora4jLibrary.LORA4J_DTYPE_F16;
      case F32 -> Lora4jLibrary.LORA4J_DTYPE_F32;
      default -> throw new IllegalArgumentException("unsupported weight dtype " + dt);
    };
  }

  public MistralConfig config() {
    return config;
  }

  public Device device() {
    return device;
  }

  /** The folder the model was loaded from. */
  public Path directory() {
    return dir;
  }

  /**
   * How many projection weights are held in 4-bit NF4: stored so by bitsandbytes or quantized at
   * load ({@code Quantization.nf4()}); 0 for a 16-bit model.
   */
  public int nf4Projections() {
    return nf4Projections;
  }

  /** The longest sequence (positions) the engine was sized for. */
  public int maxSeqLength() {
    return engine.shape().maxSeqLen();
  }

  /**
   * How data text becomes tokens for this model: its tokenizer.json, tokenized literally. A model
   * folder without a tokenizer can still train on pre-tokenized data.
   */
  public TextEncoder textEncoder() {
    Tokenizer t = tokenizer();
    if (t != null) return new TokenizerTextEncoder(t);
    MistralConfig c = config;
    String why =
        "model folder "
            + dir
            + " has no tokenizer.json: text and chat data need it; without it"
            + " only pre-tokenized data (input_ids) can be used";
    return new TextEncoder() {
      @Override
      public int[] encodeText(String text, boolean addBos) {
        throw new DataException(why);
      }

      @Override
      public String unavailableReason() {
        return why;
      }

      @Override
      public int bosId() {
        return c.bosTokenId() == null ? 1 : c.bosTokenId();
      }

      @Override
      public int eosId() {
        return c.eosTokenId() == null ? 2 : c.eosTokenId();
      }

      @Override
      public int padId() {
        return 0;
      }

      @Override
      public int vocabSize() {
        return c.vocabSize();
      }
    };
  }

  /** The model folder's tokenizer (tokenizer.json), loaded on first use; null when absent. */
  public synchronized Tokenizer tokenizer() {
    if (tokenizer == null && Files.isRegularFile(dir.resolve("tokenizer.json"))) {
      tokenizer = Tokenizer.fromModelDir(dir);
      if (tokenizer.vocabSize() > config.vocabSize()) {
        throw new Lora4jException(
            dir.resolve("tokenizer.json")
                + ": the tokenizer has "
                + tokenizer.vocabSize()
                + " tokens but config.json vocab_size is "
                + config.vocabSize());
      }
    }
    return tokenizer;
  }

  /** The chat template of the model folder, or null when it has none. */
  public synchronized ChatEncoder chatEncoder() {
    if (chatEncoder == null && tokenizer() != null) {
      chatEncoder = TemplateChatEncoder.forFolder(dir, tokenizer());
    }
    return chatEncoder;
  }

  /** The native engine under this model (the package's own callers: decoding). */
  NativeEngine engine() {
    return engine;
  }

  /** Bytes of device memory (host memory on the CPU) the model holds now. */
  public long memoryInUse() {
    return engine.memory()[0];
  }

  /** The most bytes of device memory (host memory on the CPU) the model has held. */
  public long peakMemory() {
    return engine.memory()[1];
  }

  /**
   * Reads one frozen weight back as fp32 (after {@link #mergeAdapter()} it includes the folded
   * adapter).
   *
   * @param name its Hugging Face name, one of {@link #expectedWeights(MistralConfig)}
   */
  public float[] weight(String name) {
    long[] shape = expectedWeights(config).get(name);
    long numel = 1;
    if (shape != null) for (long d : shape) numel *= d;
    return engine.getWeight(name, numel);
  }

  // ---- adapters ------------------------------------------------------------------------------

  /** Attaches a fresh adapter initialized as PEFT does (A Kaiming-uniform, B zero). */
  public void attachNewAdapter(LoraConfig lora, long seed) {
    LoraAdapter a =
        LoraAdapter.initNew(config, lora.rank(), lora.alpha(), lora.targets(), lora.rslora(), seed);
    attachAdapter(a);
  }

  /** Reads a PEFT adapter folder, validates it against this model and attaches it. */
  public void attachAdapter(Path adapterDir) {
    // (a training checkpoint whose files fail its manifest.json is refused by LoraAdapter.read)
    LoraAdapter a = LoraAdapter.read(adapterDir);
    attachAdapter(a);
    adapterSource = adapterDir;
  }

  /** Attaches an adapter held in memory (validated against this model first). */
  public void attachAdapter(LoraAdapter a) {
    a.validate(config);
    AdapterConfig ac = a.config();
    int bits = 0;
    for (LoraTarget t : ac.targets()) bits |= t.bit();
    engine.loraAttach(ac.r(), (float) ac.scale(), bits);
    for (NativeEngine.LoraTensor t : engine.loraTensors()) {
      LoraAdapter.Weight w = a.weight(t.name());
      engine.loraSet(Lora4jLibrary.LORA4J_STATE_PARAM, t.name(), w.values());
    }
    adapterConfig = ac;
    adapterSource = null;
    accumulated = LossSum.ZERO;
  }

  /** Removes the adapter (the frozen weights are unchanged). */
  public void detachAdapter() {
    engine.loraDetach();
    adapterConfig = null;
    adapterSource = null;
    accumulated = LossSum.ZERO;
  }

  /** Whether a fit is training this model (one at a time: {@link #beginTraining}). */
  private final java.util.concurrent.atomic.AtomicBoolean training =
      new java.util.concurrent.atomic.AtomicBoolean();

  /** Marks the model as training; false when a fit already trains it. */
  boolean beginTraining() {
    return training.compareAndSet(false, true);
  }

  void endTraining() {
    training.set(false);
  }

  /** The attached adapter's configuration, or null. */
  public AdapterConfig adapterConfig() {
    return adapterConfig;
  }

  /** The attached adapter's current weights (fp32). */
  public LoraAdapter adapter() {
    requireAdapter();
    return LoraAdapter.of(
        adapterConfig.asWritten(dir.toAbsolutePath().normalize().toString()),
        DType.F32,
        loraState(Lora4jLibrary.LORA4J_STATE_PARAM));
  }

  /** Trainable parameters of the attached adapter (0 when none is attached). */
  public long trainableParameters() {
    long n = 0;
    for (NativeEngine.LoraTensor t : engine.loraTensors()) n += t.numel();
    return n;
  }

  /**
   * The gradients accumulated since they were last zeroed, one per LoRA tensor of the attached
   * adapter (PEFT key names, the adapter's shapes), in the engine's order.
   */
  public Map<String, LoraAdapter.Weight> gradients() {
    return loraState(Lora4jLibrary.LORA4J_STATE_GRAD);
  }

  /** The AdamW state of the attached adapter, to save with a checkpoint. */
  public OptimizerState optimizerState() {
    return new OptimizerState(
        engine.optimizerStep(),
        loraState(Lora4jLibrary.LORA4J_STATE_EXP_AVG),
        loraState(Lora4jLibrary.LORA4J_STATE_EXP_AVG_SQ));
  }

  /**
   * Restores the AdamW state of the attached adapter (from a checkpoint of the same adapter shape):
   * every LoRA tensor's moments and the step count.
   */
  public void setOptimizerState(OptimizerState s) {
    requireAdapter();
    // every moment present and of its tensor's shape before any is set (a moment of transposed
    // shape has the same count and was taken)
    for (NativeEngine.LoraTensor t : engine.loraTensors()) {
      for (boolean second : new boolean[] {false, true}) {
        s.moment(second ? s.expAvgSq() : s.expAvg(), t.name());
        LoraAdapter.Weight w = (second ? s.expAvgSq() : s.expAvg()).get(t.name());
        if (w.rows() != t.rows() || w.cols() != t.cols()) {
          throw new Lora4jException(
              "optimizer state: the "
                  + (second ? "second" : "first")
                  + " moment of LoRA tensor "
                  + t.name()
                  + " has shape ["
                  + w.rows()
                  + ", "
                  + w.cols()
                  + "], the tensor ["
                  + t.rows()
                  + ", "
                  + t.cols()
                  + "]");
        }
      }
    }
    for (NativeEngine.LoraTensor t : engine.loraTensors()) {
      engine.loraSet(Lora4jLibrary.LORA4J_STATE_EXP_AVG, t.name(), s.moment(s.expAvg(), t.name()));
      engine.loraSet(
          Lora4jLibrary.LORA4J_STATE_EXP_AVG_SQ, t.name(), s.moment(s.expAvgSq(), t.name()));
    }
    engine.setOptimizerStep(s.step());
  }

  private Map<String, LoraAdapter.Weight> loraState(int kind) {
    requireAdapter();
    Map<String, LoraAdapter.Weight> w = new LinkedHashMap<>();
    for (NativeEngine.LoraTensor t : engine.loraTensors()) {
      float[] v = engine.loraGet(kind, t.name(), (int) t.numel());
      w.put(t.name(), new LoraAdapter.Weight((int) t.rows(), (int) t.cols(), v));
    }
    return w;
  }

  /**
   * Writes the attached adapter in PEFT's layout (adapter_config.json + safetensors) to a new or
   * empty folder; see {@link #saveAdapter(Path, boolean)}.
   */
  public void saveAdapter(Path out) {
    saveAdapter(out, false);
  }

  /**
   * Writes the attached adapter in PEFT's layout (adapter_config.json + safetensors). The folder
   * must be apart from the model folder and from the folder the adapter was read from (not one of
   * them, not inside, not containing one); an existing non-empty folder is refused unless
   * overwrite, and then replaced as a whole. It is written under a temporary name and renamed into
   * place when complete.
   */
  public void saveAdapter(Path out, boolean overwrite) {
    Map<String, Path> inputs = new LinkedHashMap<>();
    inputs.put("model folder", dir);
    inputs.put("adapter folder", adapterSource);
    OutputFolder.checkApart(out, "adapter output folder", inputs);
    LoraAdapter a = adapter();
    try (OutputFolder staged = OutputFolder.stage(out, overwrite)) {
      a.write(staged.path());
      staged.commit();
    }
  }

  /** Folds the adapter into the frozen weights (in the engine) and detaches it. */
  public void mergeAdapter() {
    requireAdapter();
    engine.loraMerge();
    adapterConfig = null;
  }

  private void requireAdapter() {
    if (adapterConfig == null) throw new IllegalStateException("no adapter is attached");
  }

  // ---- training --------------------------------------------------------------------------------

  /**
   * One optimizer step on one batch: the mean loss over its label tokens, gradients, clipping,
   * AdamW. The returned loss is the loss before the update.
   */
  public StepResult trainStep(Batch batch, AdamWConfig adamw) {
    return trainStep(List.of(Objects.requireNonNull(batch, "batch is null")), adamw);
  }

  /**
   * One optimizer step over micro-batches (gradient accumulation): the loss is the mean over all
   * label tokens of all micro-batches, so the gradient equals that of one big batch. The same as
   * {@link #zeroGrad()}, {@link #forwardBackward} of each micro-batch with 1 / (their label
   * tokens), then {@link #optimizerStep}.
   */
  public StepResult trainStep(List<Batch> microBatches, AdamWConfig adamw) {
    requireAdapter();
    // checked before any work: a null found after the forward-backward passes would leave their
    // gradients accumulated
    Objects.requireNonNull(microBatches, "microBatches is null");
    Objects.requireNonNull(adamw, "adamw is null");
    for (int i = 0; i < microBatches.size(); ++i)
      Objects.requireNonNull(microBatches.get(i), "microBatches[" + i + "] is null");
    long total = 0;
    for (Batch b : microBatches) total += b.countedTokens();
    if (total == 0) throw new Lora4jException("the step's batches have no label token to train on");
    zeroGrad();
    for (Batch b : microBatches) forwardBackward(b, 1.0 / total);
    return optimizerStep(adamw);
  }

  /** Zeroes the accumulated gradients (and the loss accumulated with them). */
  public void zeroGrad() {
    engine.zeroGrad();
    accumulated = LossSum.ZERO;
  }

  /**
   * Forward and backward on one batch: adds {@code gradScale} x the gradient of the sum of its
   * token losses to the accumulated gradients. With gradScale = 1 / (label tokens of all the step's
   * batches, {@link Batch#countedTokens()}) the gradients of several batches accumulate to the
   * gradient of their mean loss.
   *
   * @return the batch's loss sum and label tokens
   */
  public LossSum forwardBackward(Batch batch, double gradScale) {
    requireAdapter();
    LossSum ls = engine.forwardBackward(batch, (float) gradScale);
    accumulated = accumulated.plus(ls);
    return ls;
  }

  /**
   * Elements of the accumulated gradients as one buffer: every LoRA tensor of the adapter, in the
   * order of {@link #gradients()}, one after another.
   */
  public long gradientCount() {
    requireAdapter();
    return engine.gradFlatNumel();
  }

  /** Copies the accumulated gradients into out (a direct buffer, from index 0). */
  public void readGradients(FloatBuffer out) {
    requireAdapter();
    engine.gradGetFlat(out, engine.gradFlatNumel());
  }

  /**
   * Replaces the accumulated gradients with those in data (a direct buffer, from index 0), e.g. an
   * {@link Aggregation} of several workers' gradients.
   */
  public void writeGradients(FloatBuffer data) {
    requireAdapter();
    engine.gradSetFlat(data, engine.gradFlatNumel());
  }

  /**
   * Joins a group of world ranks as rank (every rank calls it with the same id, made by rank 0 with
   * {@link #newGroupId()}); a group of one needs no id. Groups of several need the CUDA backend
   * (NCCL).
   */
  public void joinGroup(byte[] id, int world, int rank) {
    engine.distInit(id, world, rank);
  }

  /** A new id for {@link #joinGroup} (NCCL's unique id; needs the CUDA backend and NCCL). */
  public static byte[] newGroupId() {
    return NativeEngine.distUniqueId();
  }

  /** The accumulated gradients become their sum over the group. */
  public void allReduceGradients() {
    requireAdapter();
    engine.distAllreduceGrad();
  }

  /**
   * Every rank's accumulated gradients into out (direct): rank r's {@link #gradientCount()} values
   * at index offset + r x gradientCount().
   */
  public void allGatherGradients(FloatBuffer out, long offset, int world) {
    requireAdapter();
    engine.distAllgatherGrad(out, offset, engine.gradFlatNumel(), world);
  }

  /**
   * Room for rows worker gradients (rows of {@link #gradientCount()} values) where the engine keeps
   * its gradients: device memory on CUDA, so robust aggregation never copies gradients through the
   * host. At most {@code LORA4J_MAX_WORKERS} (64) rows.
   */
  public void reserveWorkerRows(int rows) {
    requireAdapter();
    engine.workersReserve(rows);
  }

  /**
   * Every rank's accumulated gradients into worker row first + rank (a collective: every rank calls
   * it with the same first; a group of one copies its own into row first).
   */
  public void gatherWorkerRows(int first) {
    requireAdapter();
    engine.workersGather(first);
  }

  /** Worker rows first .. first + count - 1 into out (direct, from index 0). */
  public void readWorkerRows(int first, int count, FloatBuffer out) {
    requireAdapter();
    engine.workersRead(first, count, out, engine.gradFlatNumel());
  }

  /** Worker rows first .. first + count - 1 replaced by data (direct, from index 0). */
  public void writeWorkerRows(int first, int count, FloatBuffer data) {
    requireAdapter();
    engine.workersWrite(first, count, data, engine.gradFlatNumel());
  }

  /**
   * Applies the aggregation rule to worker rows 0 .. n - 1; the result replaces the accumulated
   * gradients. weights: the workers' label tokens for the mean (null: equal weights). Returns the
   * worker Krum selected, else -1.
   */
  public int aggregateWorkerRows(Aggregation rule, int n, float[] weights) {
    requireAdapter();
    return rule.applyToWorkerRows(engine, n, weights);
  }

  /** values become their sums over the group. */
  public void allReduceSums(double[] values) {
    engine.distAllreduceF64(values);
  }

  /**
   * The next {@link #forwardBackward} also sums the accumulated gradients (the earlier passes'
   * included) over the group while its backward runs, bucket by bucket as the layers finish; the
   * {@link #allReduceGradients} that must follow then only waits for those reductions. Every rank
   * arms the same pass (the step's last). A group of one ignores it.
   */
  void reduceGradientsInBackward() {
    requireAdapter();
    engine.distReduceInBackward(true);
  }

  /**
   * Aborts the group from any thread, also while another thread waits in a collective of this
   * model: that collective and every later one fail with an exception whose message contains
   * reason. For a rank that learnt from outside the collectives that another rank is lost.
   */
  public void abortGroup(String reason) {
    engine.distAbort(reason);
  }

  /** SHA-256 of the attached adapter's weights (names, shapes and fp32 bits, in name order). */
  public byte[] adapterSha256() {
    requireAdapter();
    java.security.MessageDigest md;
    try {
      md = java.security.MessageDigest.getInstance("SHA-256");
    } catch (java.security.NoSuchAlgorithmException e) {
      throw new IllegalStateException(e);
    }
    Map<String, LoraAdapter.Weight> w = new java.util.TreeMap<>(adapter().weights());
    for (Map.Entry<String, LoraAdapter.Weight> e : w.entrySet()) {
      md.update(e.getKey().getBytes(java.nio.charset.StandardCharsets.UTF_8));
      float[] v = e.getValue().values();
      java.nio.ByteBuffer b =
          java.nio.ByteBuffer.allocate(8 + 4 * v.length).order(java.nio.ByteOrder.LITTLE_ENDIAN);
      b.putInt(e.getValue().rows()).putInt(e.getValue().cols());
      for (float f : v) b.putInt(Float.floatToRawIntBits(f));
      md.update(b.array());
    }
    return md.digest();
  }

  /** Global L2 norm of the accumulated gradients, before clipping; nothing is applied. */
  public double gradNorm() {
    return engine.gradNorm();
  }

  /**
   * Applies the accumulated gradients: global-norm clipping, a finiteness check (a step whose
   * gradients are not finite is skipped, {@link StepResult#applied()} false), AdamW; then zeroes
   * the gradients. The result's loss and tokens are those of the forward-backward passes since the
   * gradients were last zeroed.
   */
  public StepResult optimizerStep(AdamWConfig adamw) {
    requireAdapter();
    Objects.requireNonNull(adamw, "adamw is null");
    StepResult r = engine.optimizerStep(adamw.toNative(), accumulated);
    accumulated = LossSum.ZERO;
    return r;
  }

  /** Mean loss over the batch's label tokens (no gradients). */
  public double evalLoss(Batch batch) {
    return engine.evalLoss(batch).mean();
  }

  /** Sum of token losses and count (to average over several batches). */
  public LossSum evalLossSum(Batch batch) {
    return engine.evalLoss(batch);
  }

  /** Logits [rows * seq * vocab]. */
  public float[] logits(Batch batch) {
    return engine.logits(batch);
  }

  /** Hidden states [(layers + 1) * rows * seq * hidden], Hugging Face's output_hidden_states. */
  public float[] hiddenStates(Batch batch) {
    return engine.hiddenStates(batch);
  }

  /** Greedy generation of up to maxNew tokens; stops after eosId (negative: never). */
  public int[] generateGreedy(int[] prompt, int maxNew, int eosId) {
    return engine.generateGreedy(prompt, maxNew, eosId);
  }

  /** Refuses a closed model before anything is written for it. */
  void requireOpen() {
    if (engine.isClosed()) throw new IllegalStateException("the model is closed");
  }

  @Override
  public void close() {
    engine.close();
  }
}
