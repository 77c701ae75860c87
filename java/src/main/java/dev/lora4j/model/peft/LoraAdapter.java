package dev.lora4j.model.peft;

import dev.lora4j.model.MistralConfig;
import dev.lora4j.safetensors.DType;
import dev.lora4j.safetensors.SafetensorsException;
import dev.lora4j.safetensors.SafetensorsFile;
import dev.lora4j.safetensors.SafetensorsWriter;
import dev.lora4j.safetensors.TensorInfo;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Collections;
import java.util.Map;
import java.util.Objects;
import java.util.Set;
import java.util.SplittableRandom;
import java.util.TreeMap;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * A LoRA adapter in memory: its {@link AdapterConfig} and one float matrix per PEFT key, {@code
 * base_model.model.model.layers.{i}.self_attn.q_proj.lora_A.weight} ({@code [r, in]}) and {@code
 * ...lora_B.weight} ({@code [out, r]}).
 *
 * <p>{@link #read(Path)} and {@link #write(Path)} use PEFT's folder layout ({@code
 * adapter_config.json} + {@code adapter_model.safetensors}, same keys, metadata {@code {"format":
 * "pt"}}). Values are held as float; the file dtype is remembered ({@link #dtype()}) and used when
 * writing, so a float32 adapter round-trips bit for bit (an F64 file round-trips to float
 * precision). {@link #validate(MistralConfig)} checks the adapter against a model.
 */
public final class LoraAdapter {
  /** File name of the weights inside an adapter folder. */
  public static final String WEIGHTS_FILE = "adapter_model.safetensors";

  private static final Pattern KEY =
      Pattern.compile(
          "base_model\\.model\\.model\\.layers\\.(0|[1-9][0-9]{0,8})\\.(self_attn|mlp)\\."
              + "([a-z_]+)\\.lora_([AB])\\.weight");

  /**
   * One LoRA matrix, row-major.
   *
   * @param rows first dimension
   * @param cols second dimension
   * @param values {@code rows * cols} elements (the array is shared, not copied)
   */
  public record Weight(int rows, int cols, float[] values) {
    /** Checks that the element count matches the shape. */
    public Weight {
      Objects.requireNonNull(values, "values");
      if (rows < 0 || cols < 0 || (long) rows * cols != values.length) {
        throw new IllegalArgumentException(
            "weight of shape ["
                + rows
                + ", "
                + cols
                + "] cannot "
                + "hold "
                + values.length
                + " values");
      }
    }

    /**
     * @return {@code {rows, cols}}
     */
    public long[] shape() {
      return new long[] {rows, cols};
    }
  }

  private final AdapterConfig config;
  private final DType dtype;
  private final Map<String, Weight> weights; // sorted by key
  private final String source;

  private LoraAdapter(
      AdapterConfig config, DType dtype, Map<String, Weight> weights, String source) {
    this.config = config;
    this.dtype = dtype;
    this.weights = Collections.unmodifiableMap(new TreeMap<>(weights));
    this.source = source;
  }

  /**
   * An adapter from weights already in memory (for instance read back from the native core).
   *
   * @param config the adapter config
   * @param dtype the dtype to write (F32 as PEFT saves a float32 adapter; F64, BF16, F16)
   * @param weights PEFT key to matrix; every key must be a LoRA key
   * @return the adapter
   */
  public static LoraAdapter of(AdapterConfig config, DType dtype, Map<String, Weight> weights) {
    requireFloat(dtype, "adapter in memory", "any");
    for (String k : weights.keySet()) parseKey("adapter in memory", k);
    return new LoraAdapter(config, dtype, weights, "adapter in memory");
  }

  /**
   * The PEFT key of a LoRA matrix.
   *
   * @param layer decoder layer index
   * @param target the adapted layer
   * @param b false for lora_A, true for lora_B
   * @return e.g. {@code base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight}
   */
  public static String key(int layer, LoraTarget target, boolean b) {
    return "base_model.model.model.layers."
        + layer
        + "."
        + target.modulePath()
        + ".lora_"
        + (b ? "B" : "A")
        + ".weight";
  }

  /**
   * Reads a PEFT adapter folder. Float weights of any float dtype are converted to float.
   *
   * @param dir folder with {@code adapter_config.json} and {@code adapter_model.safetensors}
   * @return the adapter (not yet checked against a model: see {@link #validate})
   * @throws dev.lora4j.model.ConfigException for a bad config
   * @throws AdapterException naming the file and tensor for a key that is not a LoRA key, a
   *     non-float dtype, a shape that is not 2-D or does not match {@code r}
   * @throws SafetensorsException for a bad safetensors file
   * @throws AdapterException for a training checkpoint (a folder with manifest.json) whose files
   *     fail their recorded sizes and SHA-256: a damaged checkpoint is refused, not read
   */
  public static LoraAdapter read(Path dir) {
    // a training checkpoint carries a manifest of its files' sizes and SHA-256: one whose files
    // fail it is damaged (merge, export and generation alike refuse it)
    if (Files.isRegularFile(dir.resolve("manifest.json"))) {
      String problem = dev.lora4j.train.CheckpointStore.verify(dir);
      if (problem != null) {
        throw new AdapterException(
            dir
                + " is a training checkpoint whose files fail its manifest.json ("
                + problem
                + "): it is damaged; use another checkpoint of the run");
      }
    }
    AdapterConfig cfg = AdapterConfig.load(dir.resolve(AdapterConfig.FILE_NAME));
    Path file = dir.resolve(WEIGHTS_FILE);
    if (!Files.isRegularFile(file)) {
      String extra =
          Files.exists(dir.resolve("adapter_model.bin"))
              ? " (adapter_model.bin, a pickle, is not read: convert it to safetensors)"
              : "";
      throw new AdapterException(file + ": adapter weights file is missing" + extra);
    }
    Map<String, Weight> w = new TreeMap<>();
    DType dtype = null;
    try (SafetensorsFile f = SafetensorsFile.open(file)) {
      for (TensorInfo t : f.tensors()) {
        parseKey(file.toString(), t.name());
        requireFloat(t.dtype(), file.toString(), t.name());
        if (dtype == null) {
          dtype = t.dtype();
        } else if (dtype != t.dtype()) {
          throw new AdapterException(
              file
                  + ": tensor '"
                  + t.name()
                  + "' is "
                  + t.dtype()
                  + " but the tensors before it are "
                  + dtype);
        }
        if (t.rank() != 2) {
          throw new AdapterException(
              file
                  + ": tensor '"
                  + t.name()
                  + "' has shape "
                  + java.util.Arrays.toString(t.shape())
                  + "; LoRA weights are 2-D");
        }
        boolean isB = t.name().endsWith(".lora_B.weight");
        long rDim = isB ? t.dim(1) : t.dim(0);
        if (rDim != cfg.r()) {
          throw new AdapterException(
              file
                  + ": tensor '"
                  + t.name()
                  + "' has shape "
                  + java.util.Arrays.toString(t.shape())
                  + " but r = "
                  + cfg.r()
                  + " in "
                  + AdapterConfig.FILE_NAME);
        }
        w.put(t.name(), new Weight((int) t.dim(0), (int) t.dim(1), f.readFloat(t.name())));
      }
    }
    if (w.isEmpty()) {
      throw new AdapterException(file + ": holds no tensors");
    }
    return new LoraAdapter(cfg, dtype, w, file.toString());
  }

  private static void requireFloat(DType dtype, String src, String tensor) {
    if (!dtype.isFloatingPoint()) {
      throw new AdapterException(
          src
              + ": tensor '"
              + tensor
              + "' is "
              + dtype
              + "; LoRA weights must be a floating-point type");
    }
  }

  /** Parses a key into {layer, target ordinal, isB}, or throws naming the key. */
  private static int[] parseKey(String src, String key) {
    Matcher m = KEY.matcher(key);
    if (!m.matches()) {
      throw new AdapterException(
          src
              + ": unexpected tensor '"
              + key
              + "'; LoRA keys look like "
              + "'base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight'");
    }
    LoraTarget t = LoraTarget.byModuleName(m.group(3)).orElse(null);
    if (t == null || !t.modulePath().equals(m.group(2) + "." + m.group(3))) {
      throw new AdapterException(
          src
              + ": unexpected tensor '"
              + key
              + "': '"
              + m.group(2)
              + "."
              + m.group(3)
              + "' is not a LoRA target of a Mistral layer");
    }
    return new int[] {Integer.parseInt(m.group(1)), t.ordinal(), m.group(4).equals("B") ? 1 : 0};
  }

  /**
   * Checks the adapter against a model: for every layer and every target in the config, lora_A is
   * {@code [r, in]} and lora_B is {@code [out, r]}, every value finite; no other tensor is present.
   *
   * @param model the base model's config
   * @throws AdapterException naming the adapter file and the first tensor that is missing,
   *     unexpected, of the wrong shape or holding a NaN or an infinity (with its row and column)
   */
  public void validate(MistralConfig model) {
    Set<LoraTarget> targets = config.targets();
    for (String k : weights.keySet()) {
      int[] p = parseKey(source, k);
      LoraTarget t = LoraTarget.values()[p[1]];
      if (p[0] >= model.numHiddenLayers()) {
        throw new AdapterException(
            source
                + ": unexpected tensor '"
                + k
                + "': the model has "
                + model.numHiddenLayers()
                + " layers");
      }
      if (!targets.contains(t)) {
        throw new AdapterException(
            source
                + ": unexpected tensor '"
                + k
                + "': "
                + t.moduleName()
                + " is not in target_modules "
                + config.targetModules());
      }
    }
    int r = config.r();
    for (int layer = 0; layer < model.numHiddenLayers(); layer++) {
      for (LoraTarget t : targets) {
        check(key(layer, t, false), r, t.inFeatures(model), t);
        check(key(layer, t, true), t.outFeatures(model), r, t);
      }
    }
  }

  private void check(String key, int rows, int cols, LoraTarget t) {
    Weight w = weights.get(key);
    if (w == null) {
      throw new AdapterException(
          source
              + ": tensor '"
              + key
              + "' is missing ("
              + t.moduleName()
              + " is in target_modules)");
    }
    if (w.rows() != rows || w.cols() != cols) {
      throw new AdapterException(
          source
              + ": tensor '"
              + key
              + "' has shape ["
              + w.rows()
              + ", "
              + w.cols()
              + "] but the model needs ["
              + rows
              + ", "
              + cols
              + "]");
    }
    float[] v = w.values();
    for (int i = 0; i < v.length; i++) {
      if (!Float.isFinite(v[i])) {
        throw new AdapterException(
            source
                + ": tensor '"
                + key
                + "' holds a value that is not finite ("
                + v[i]
                + ") at row "
                + i / cols
                + ", column "
                + i % cols);
      }
    }
  }

  /**
   * A new adapter initialised as PEFT does with {@code init_lora_weights=True}: lora_A from {@code
   * kaiming_uniform_(a=sqrt(5))}, which for fan_in = in_features is U(-b, b) with b = sqrt(6 / ((1
   * + a^2) fan_in)) = 1 / sqrt(in_features); lora_B zero. The random stream is a seeded {@link
   * SplittableRandom} (not torch's generator), filled layer by layer, targets in {@link LoraTarget}
   * order, row-major.
   *
   * @param model the base model's config
   * @param r rank
   * @param alpha LoRA alpha
   * @param targets the adapted layers
   * @param rslora whether to scale by {@code alpha / sqrt(r)}
   * @param seed random seed
   * @return the adapter, dtype F32
   */
  public static LoraAdapter initNew(
      MistralConfig model,
      int r,
      double alpha,
      Set<LoraTarget> targets,
      boolean rslora,
      long seed) {
    AdapterConfig cfg = AdapterConfig.of(r, alpha, targets, rslora);
    SplittableRandom rng = new SplittableRandom(seed);
    Map<String, Weight> w = new TreeMap<>();
    for (int layer = 0; layer < model.numHiddenLayers(); layer++) {
      for (LoraTarget t : cfg.targets()) {
        int in = t.inFeatures(model);
        int out = t.outFeatures(model);
        double bound = kaimingUniformBound(in);
        float[] a = new float[Math.multiplyExact(r, in)];
        for (int i = 0; i < a.length; i++) {
          a[i] = (float) ((2.0 * rng.nextDouble() - 1.0) * bound);
        }
        w.put(key(layer, t, false), new Weight(r, in, a));
        w.put(key(layer, t, true), new Weight(out, r, new float[Math.multiplyExact(out, r)]));
      }
    }
    return new LoraAdapter(cfg, DType.F32, w, "new adapter");
  }

  /**
   * The bound of {@code torch.nn.init.kaiming_uniform_(w, a=sqrt(5))} for a weight with the given
   * fan-in: gain = sqrt(2 / (1 + a^2)), bound = gain * sqrt(3 / fan_in) = 1 / sqrt(fan_in).
   *
   * @param fanIn input features
   * @return the bound b of U(-b, b)
   */
  public static double kaimingUniformBound(int fanIn) {
    double a = Math.sqrt(5.0);
    double gain = Math.sqrt(2.0 / (1.0 + a * a));
    return gain * Math.sqrt(3.0 / fanIn);
  }

  /**
   * @return the adapter config
   */
  public AdapterConfig config() {
    return config;
  }

  /**
   * @return the dtype the weights are written in
   */
  public DType dtype() {
    return dtype;
  }

  /**
   * @param newDtype a floating-point dtype
   * @return the same adapter, written as {@code newDtype}
   */
  public LoraAdapter withDtype(DType newDtype) {
    requireFloat(newDtype, source, "any");
    return new LoraAdapter(config, newDtype, weights, source);
  }

  /**
   * @return where the adapter came from (a file path), for messages
   */
  public String source() {
    return source;
  }

  /**
   * @return every PEFT key, sorted
   */
  public Set<String> keys() {
    return weights.keySet();
  }

  /**
   * @return key to matrix, sorted by key (unmodifiable)
   */
  public Map<String, Weight> weights() {
    return weights;
  }

  /**
   * @param key a PEFT key
   * @return its matrix
   * @throws AdapterException naming the source and key when absent
   */
  public Weight weight(String key) {
    Weight w = weights.get(key);
    if (w == null) {
      throw new AdapterException(source + ": no tensor '" + key + "'");
    }
    return w;
  }

  /**
   * @param layer layer index
   * @param target adapted layer
   * @return lora_A, {@code [r, in]}
   */
  public Weight a(int layer, LoraTarget target) {
    return weight(key(layer, target, false));
  }

  /**
   * @param layer layer index
   * @param target adapted layer
   * @return lora_B, {@code [out, r]}
   */
  public Weight b(int layer, LoraTarget target) {
    return weight(key(layer, target, true));
  }

  /**
   * Writes the adapter as PEFT does: {@code adapter_config.json} and {@code
   * adapter_model.safetensors} (each written to a temporary file and renamed).
   *
   * @param dir the adapter folder; created if missing
   */
  public void write(Path dir) {
    try {
      Files.createDirectories(dir);
    } catch (java.io.IOException e) {
      throw new AdapterException(dir + ": cannot create adapter folder: " + e, e);
    }
    SafetensorsWriter sw = new SafetensorsWriter();
    weights.forEach((k, w) -> sw.addFloats(k, dtype, w.shape(), w.values()));
    sw.write(dir.resolve(WEIGHTS_FILE));
    config.write(dir);
  }

  @Override
  public String toString() {
    return "LoraAdapter["
        + source
        + ", r="
        + config.r()
        + ", alpha="
        + config.loraAlpha()
        + ", targets="
        + config.targetModules()
        + ", "
        + weights.size()
        + " tensors, "
        + dtype
        + "]";
  }
}
