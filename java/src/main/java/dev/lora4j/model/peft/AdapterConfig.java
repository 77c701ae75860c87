package dev.lora4j.model.peft;

import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.lora4j.io.JsonErrors;
import dev.lora4j.model.ConfigException;
import dev.lora4j.model.Json;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.EnumSet;
import java.util.List;
import java.util.Objects;
import java.util.Set;
import java.util.TreeMap;

/**
 * A PEFT LoRA {@code adapter_config.json}.
 *
 * <p>Reading ignores keys lora4j does not model, and rejects, with a {@link ConfigException} naming
 * the file and key, the features it does not implement: {@code use_dora}, a non-empty {@code
 * rank_pattern} or {@code alpha_pattern}, {@code modules_to_save}, {@code bias} other than "none",
 * {@code layers_to_transform}, {@code layers_pattern}, {@code layer_replication}, {@code
 * fan_in_fan_out}, {@code lora_bias}, {@code exclude_modules}, {@code target_parameters}, {@code
 * trainable_token_indices}, and a {@code target_modules} that is a regex. {@code "all-linear"} is
 * expanded to the seven projections, as PEFT does for a Mistral model. Writing produces every key
 * PEFT 0.21 writes, sorted, in {@code json.dumps(indent=2)} layout.
 *
 * @param r LoRA rank
 * @param loraAlpha LoRA alpha
 * @param targetModules module names, in the order the file lists them
 * @param loraDropout dropout on the LoRA input
 * @param useRslora whether the scale is {@code alpha / sqrt(r)} instead of {@code alpha / r}
 * @param bias always "none"
 * @param peftType always "LORA"
 * @param taskType "CAUSAL_LM" (or null)
 * @param fanInFanOut always false
 * @param inferenceMode as PEFT saves it (true in saved adapters)
 * @param initLoraWeights PEFT's init flag (true: Kaiming-uniform A, zero B)
 * @param baseModelNameOrPath the base model's name or path, or null
 * @param revision the base model's revision, or null
 * @param peftVersion the PEFT version the layout follows, or null
 */
public record AdapterConfig(
    int r,
    double loraAlpha,
    List<String> targetModules,
    double loraDropout,
    boolean useRslora,
    String bias,
    String peftType,
    String taskType,
    boolean fanInFanOut,
    boolean inferenceMode,
    boolean initLoraWeights,
    String baseModelNameOrPath,
    String revision,
    String peftVersion) {

  /** File name of the config inside an adapter folder. */
  public static final String FILE_NAME = "adapter_config.json";

  /** The PEFT version whose file layout {@link #toJson()} reproduces. */
  public static final String PEFT_LAYOUT_VERSION = "0.21.0";

  private static final ObjectMapper JSON =
      new ObjectMapper().enable(JsonParser.Feature.STRICT_DUPLICATE_DETECTION);

  /** Checks rank, alpha, dropout and targets; copies the target list. */
  public AdapterConfig {
    if (r <= 0) throw new ConfigException("adapter config: r = " + r + " must be positive");
    if (!(loraAlpha > 0) || Double.isInfinite(loraAlpha)) {
      throw new ConfigException(
          "adapter config: lora_alpha = " + loraAlpha + " must be a positive number");
    }
    if (!(loraDropout >= 0 && loraDropout < 1)) {
      throw new ConfigException(
          "adapter config: lora_dropout = " + loraDropout + " must be in [0, 1)");
    }
    targetModules = List.copyOf(targetModules);
    if (targetModules.isEmpty()) {
      throw new ConfigException("adapter config: target_modules is empty");
    }
    for (String t : targetModules) {
      if (LoraTarget.byModuleName(t).isEmpty()) {
        throw new ConfigException(
            "adapter config: target module '"
                + t
                + "' is not one of "
                + "q_proj, k_proj, v_proj, o_proj, gate_proj, up_proj, down_proj");
      }
    }
    bias = Objects.requireNonNullElse(bias, "none");
    peftType = Objects.requireNonNullElse(peftType, "LORA");
  }

  /**
   * A config for a new adapter, with PEFT's defaults for everything else (no dropout, task
   * CAUSAL_LM, inference_mode true as PEFT saves it).
   *
   * @param r rank
   * @param alpha LoRA alpha
   * @param targets the adapted layers
   * @param rslora whether to scale by {@code alpha / sqrt(r)}
   * @return the config
   */
  public static AdapterConfig of(int r, double alpha, Set<LoraTarget> targets, boolean rslora) {
    List<String> names = new ArrayList<>();
    for (LoraTarget t : EnumSet.copyOf(targets)) names.add(t.moduleName());
    return new AdapterConfig(
        r,
        alpha,
        names,
        0.0,
        rslora,
        "none",
        "LORA",
        "CAUSAL_LM",
        false,
        true,
        true,
        null,
        null,
        PEFT_LAYOUT_VERSION);
  }

  /**
   * @param baseModel the base model's name or path, as PEFT records it
   * @return a copy with {@code base_model_name_or_path} set
   */
  public AdapterConfig withBaseModel(String baseModel) {
    return with(baseModel, loraDropout, peftVersion);
  }

  private AdapterConfig with(String baseModel, double dropout, String version) {
    return new AdapterConfig(
        r,
        loraAlpha,
        targetModules,
        dropout,
        useRslora,
        bias,
        peftType,
        taskType,
        fanInFanOut,
        inferenceMode,
        initLoraWeights,
        baseModel,
        revision,
        version);
  }

  /**
   * The config as lora4j writes an adapter it trained or holds: {@code base_model_name_or_path} the
   * model it was trained on (PEFT records the model's name or path there, and
   * AutoPeftModelForCausalLM loads the base from it), {@code lora_dropout} 0.0 (lora4j trains
   * without dropout, whatever a starting adapter's config said), and PEFT's layout version.
   *
   * @param baseModel the base model's name or path
   */
  public AdapterConfig asWritten(String baseModel) {
    return with(baseModel, 0.0, PEFT_LAYOUT_VERSION);
  }

  /**
   * @return the LoRA scale: {@code alpha / r}, or {@code alpha / sqrt(r)} with rsLoRA
   */
  public double scale() {
    return useRslora ? loraAlpha / Math.sqrt(r) : loraAlpha / r;
  }

  /**
   * @return the targets, in {@link LoraTarget} order
   */
  public Set<LoraTarget> targets() {
    EnumSet<LoraTarget> s = EnumSet.noneOf(LoraTarget.class);
    for (String t : targetModules) s.add(LoraTarget.byModuleName(t).orElseThrow());
    return s;
  }

  /**
   * Reads {@code adapter_config.json}.
   *
   * @param file the file, or an adapter folder holding it
   * @return the config
   * @throws ConfigException naming the file and key
   */
  public static AdapterConfig load(Path file) {
    Path f = Files.isDirectory(file) ? file.resolve(FILE_NAME) : file;
    String text;
    try {
      text = Files.readString(f, StandardCharsets.UTF_8);
    } catch (IOException e) {
      throw new ConfigException(f + ": cannot read adapter config: " + e, e);
    }
    return parse(text, f.toString());
  }

  /**
   * Parses the text of an {@code adapter_config.json}.
   *
   * @param json the text
   * @param src the file name used in messages
   * @return the config
   * @throws ConfigException naming {@code src} and the key
   */
  public static AdapterConfig parse(String json, String src) {
    JsonNode root;
    try {
      root = JSON.readTree(json);
    } catch (JsonProcessingException e) {
      throw new ConfigException(src + ": not valid JSON: " + JsonErrors.describe(e), e);
    }
    if (root == null || !root.isObject()) {
      throw new ConfigException(src + ": not a JSON object");
    }
    String peftType = text(root, src, "peft_type", "LORA");
    if (!"LORA".equals(peftType)) {
      throw new ConfigException(
          src + ": key 'peft_type' is '" + peftType + "'; lora4j reads only LORA adapters");
    }
    JsonNode rNode = root.get("r");
    if (rNode == null || rNode.isNull()) {
      throw new ConfigException(src + ": required key 'r' is missing");
    }
    if (!rNode.isIntegralNumber() || !rNode.canConvertToInt() || rNode.intValue() <= 0) {
      throw new ConfigException(src + ": key 'r' must be a positive integer, found " + rNode);
    }
    int r = rNode.intValue();
    double alpha = number(root, src, "lora_alpha", 8);
    if (!(alpha > 0) || Double.isInfinite(alpha)) {
      throw new ConfigException(
          src + ": key 'lora_alpha' = " + alpha + " must be a positive finite number");
    }
    double dropout = number(root, src, "lora_dropout", 0.0);
    if (!(dropout >= 0 && dropout < 1)) {
      throw new ConfigException(src + ": key 'lora_dropout' = " + dropout + " must be in [0, 1)");
    }
    List<String> targets = targets(root, src);
    boolean rslora = bool(root, src, "use_rslora", false);
    String bias = text(root, src, "bias", "none");
    // "all" and "lora_only" train the targeted layers' biases: Mistral's projections have none,
    // so the adapter is plain LoRA (a bias tensor in its file is refused as an unexpected key)
    if (!List.of("none", "all", "lora_only").contains(bias)) {
      throw new ConfigException(
          src + ": key 'bias' is '" + bias + "'; PEFT's values are none, all and lora_only");
    }
    if (bool(root, src, "use_dora", false)) {
      throw new ConfigException(src + ": key 'use_dora' is true; DoRA is not supported");
    }
    // fan_in_fan_out true: PEFT sets it back to false for nn.Linear layers (Mistral's), with a
    // warning, and computes plain LoRA; read as it does
    bool(root, src, "fan_in_fan_out", false);
    if (bool(root, src, "lora_bias", false)) {
      throw new ConfigException(src + ": key 'lora_bias' is true; LoRA biases are not supported");
    }
    for (String k :
        List.of(
            "rank_pattern",
            "alpha_pattern",
            "modules_to_save",
            "layers_to_transform",
            "layers_pattern",
            "layer_replication",
            "exclude_modules",
            "target_parameters",
            "trainable_token_indices",
            // variants whose forward is not W x + s B A x: aLoRA applies the update only from
            // its invocation tokens on, Arrow routes between adapters, KaSA scales by a learned
            // diagonal; LoftQ's config replaces the base weights (an empty object is PEFT's
            // default, and means none)
            "alora_invocation_tokens",
            "arrow_config",
            "kasa_config",
            "loftq_config")) {
      JsonNode n = root.get(k);
      if (n != null && !n.isNull() && !(n.isContainerNode() && n.isEmpty())) {
        throw new ConfigException(
            src
                + ": key '"
                + k
                + "' is set ("
                + n
                + "); this PEFT feature is not supported by lora4j");
      }
    }
    for (String k : List.of("use_qalora", "use_bdlora", "use_kasa")) {
      if (bool(root, src, k, false)) {
        throw new ConfigException(
            src
                + ": key '"
                + k
                + "' is true; this PEFT LoRA variant (its factors are grouped or scaled otherwise)"
                + " is not supported by lora4j");
      }
    }
    String task = text(root, src, "task_type", null);
    boolean inference = bool(root, src, "inference_mode", true);
    JsonNode init = root.get("init_lora_weights");
    if (init != null && init.isTextual() && !BENIGN_INITS.contains(init.textValue())) {
      // PiSSA, OLoRA, CorDA and LoftQ rewrite the base weights when PEFT loads the adapter
      // (W - s B0 A0, or quantized W): on the unmodified base the adapter computes another model
      throw new ConfigException(
          src
              + ": key 'init_lora_weights' is \""
              + init.textValue()
              + "\": PEFT rebuilds the base weights from this initialization when it loads the"
              + " adapter, which lora4j does not; convert it to a plain LoRA first (PEFT's"
              + " save_pretrained with path_initial_model_for_weight_conversion)");
    }
    if (init != null && !init.isNull() && !init.isBoolean() && !init.isTextual()) {
      throw new ConfigException(
          src + ": key 'init_lora_weights' must be true, false or a string, found " + init);
    }
    boolean initWeights = init == null || !init.isBoolean() || init.booleanValue();
    return new AdapterConfig(
        r,
        alpha,
        targets,
        dropout,
        rslora,
        bias,
        peftType,
        task,
        false,
        inference,
        initWeights,
        text(root, src, "base_model_name_or_path", null),
        text(root, src, "revision", null),
        text(root, src, "peft_version", null));
  }

  /**
   * Values of init_lora_weights that only set the factors' starting values: the trained adapter
   * computes W x + s B A x on the unmodified base.
   */
  static final java.util.Set<String> BENIGN_INITS =
      java.util.Set.of("gaussian", "eva", "orthogonal");

  private static List<String> targets(JsonNode root, String src) {
    JsonNode n = root.get("target_modules");
    if (n == null || n.isNull()) {
      throw new ConfigException(src + ": required key 'target_modules' is missing");
    }
    List<String> out = new ArrayList<>();
    if (n.isTextual()) {
      if (!"all-linear".equals(n.textValue())) {
        throw new ConfigException(
            src
                + ": key 'target_modules' is the regex '"
                + n.textValue()
                + "'; give a list of module names (q_proj, ..., down_proj) or \"all-linear\"");
      }
      for (LoraTarget t : LoraTarget.values()) out.add(t.moduleName());
      return out;
    }
    if (!n.isArray() || n.isEmpty()) {
      throw new ConfigException(
          src + ": key 'target_modules' must be a non-empty list of " + "module names, found " + n);
    }
    for (JsonNode e : n) {
      if (!e.isTextual() || LoraTarget.byModuleName(e.textValue()).isEmpty()) {
        throw new ConfigException(
            src
                + ": key 'target_modules' has "
                + e
                + "; supported are "
                + "q_proj, k_proj, v_proj, o_proj, gate_proj, up_proj, down_proj");
      }
      if (out.contains(e.textValue())) {
        throw new ConfigException(src + ": key 'target_modules' lists " + e + " twice");
      }
      out.add(e.textValue());
    }
    return out;
  }

  private static String text(JsonNode root, String src, String key, String dflt) {
    JsonNode n = root.get(key);
    if (n == null || n.isNull()) return dflt;
    if (!n.isTextual()) {
      throw new ConfigException(src + ": key '" + key + "' must be a string, found " + n);
    }
    return n.textValue();
  }

  private static double number(JsonNode root, String src, String key, double dflt) {
    JsonNode n = root.get(key);
    if (n == null || n.isNull()) return dflt;
    if (!n.isNumber()) {
      throw new ConfigException(src + ": key '" + key + "' must be a number, found " + n);
    }
    return n.doubleValue();
  }

  private static boolean bool(JsonNode root, String src, String key, boolean dflt) {
    JsonNode n = root.get(key);
    if (n == null || n.isNull()) return dflt;
    if (!n.isBoolean()) {
      throw new ConfigException(src + ": key '" + key + "' must be true or false, found " + n);
    }
    return n.booleanValue();
  }

  /**
   * The config as PEFT 0.21 writes it: every key PEFT writes, sorted, two-space indent, no trailing
   * newline. Keys lora4j does not model get PEFT's defaults.
   *
   * @return the JSON text
   */
  public String toJson() {
    JsonNodeFactory f = JsonNodeFactory.instance;
    TreeMap<String, JsonNode> m = new TreeMap<>();
    for (String k :
        List.of(
            "alora_invocation_tokens",
            "arrow_config",
            "auto_mapping",
            "corda_config",
            "eva_config",
            "exclude_modules",
            "kasa_config",
            "layer_replication",
            "layers_pattern",
            "layers_to_transform",
            "lora_ga_config",
            "megatron_config",
            "modules_to_save",
            "monteclora_config",
            "target_parameters",
            "trainable_token_indices",
            "use_bdlora",
            "velora_config")) {
      m.put(k, f.nullNode());
    }
    m.put("alpha_pattern", f.objectNode());
    m.put("rank_pattern", f.objectNode());
    m.put("loftq_config", f.objectNode());
    m.put("ensure_weight_tying", f.booleanNode(false));
    m.put("lora_bias", f.booleanNode(false));
    m.put("megatron_core", f.textNode("megatron.core"));
    m.put("qalora_group_size", f.numberNode(16));
    m.put("use_dora", f.booleanNode(false));
    m.put("use_qalora", f.booleanNode(false));
    m.put("base_model_name_or_path", textOrNull(f, baseModelNameOrPath));
    m.put("bias", f.textNode(bias));
    m.put("fan_in_fan_out", f.booleanNode(fanInFanOut));
    m.put("inference_mode", f.booleanNode(inferenceMode));
    m.put("init_lora_weights", f.booleanNode(initLoraWeights));
    m.put(
        "lora_alpha",
        loraAlpha == Math.rint(loraAlpha) && Math.abs(loraAlpha) < 1e15
            ? f.numberNode((long) loraAlpha)
            : f.numberNode(loraAlpha));
    m.put("lora_dropout", f.numberNode(loraDropout));
    m.put("peft_type", f.textNode(peftType));
    m.put("peft_version", textOrNull(f, peftVersion));
    m.put("r", f.numberNode(r));
    m.put("revision", textOrNull(f, revision));
    ArrayNode tm = f.arrayNode();
    targetModules.forEach(tm::add);
    m.put("target_modules", tm);
    m.put("task_type", textOrNull(f, taskType));
    m.put("use_rslora", f.booleanNode(useRslora));
    ObjectNode root = f.objectNode();
    m.forEach(root::set);
    return Json.pretty(root);
  }

  private static JsonNode textOrNull(JsonNodeFactory f, String s) {
    return s == null ? f.nullNode() : f.textNode(s);
  }

  /**
   * Writes {@code adapter_config.json} into a folder (temp file, then rename).
   *
   * @param dir the adapter folder (created if missing)
   * @throws ConfigException naming the file when writing fails
   */
  public void write(Path dir) {
    Path target = dir.resolve(FILE_NAME);
    try {
      Files.createDirectories(dir);
      Path tmp = dir.resolve("." + FILE_NAME + ".tmp");
      Files.writeString(tmp, toJson(), StandardCharsets.UTF_8);
      Files.move(
          tmp,
          target,
          java.nio.file.StandardCopyOption.REPLACE_EXISTING,
          java.nio.file.StandardCopyOption.ATOMIC_MOVE);
    } catch (IOException e) {
      throw new ConfigException(target + ": cannot write adapter config: " + e, e);
    }
  }
}
