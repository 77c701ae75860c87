package dev.lora4j.train;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.lora4j.Lora4jException;
import dev.lora4j.TrainingConfig;
import dev.lora4j.model.peft.AdapterConfig;
import dev.lora4j.model.peft.LoraTarget;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.EnumMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.StringJoiner;

/**
 * The settings that shape a run, recorded in every checkpoint ({@code trainer_state.json}, key
 * {@code run_settings}) so that a resumed run can check it continues the same run. A resume with a
 * different {@link Setting#fixed() fixed} setting is refused with every difference named; the
 * optimizer settings (learning rate, weight decay, betas, epsilon, clipping) may change on resume.
 * What is not recorded may change freely: evaluation, logging and checkpoint intervals, the number
 * of checkpoints kept, the validation file, the poisoned-batch guard, early stopping.
 *
 * @param values the value of each recorded setting, as text (absent: not recorded)
 */
public record RunSettings(Map<Setting, String> values) {
  /** A recorded setting, with the names a user knows it by. */
  public enum Setting {
    LORA_RANK("lora_rank", "LoRA rank", "--rank", "LoraConfig.rank", true),
    LORA_ALPHA("lora_alpha", "LoRA alpha", "--alpha", "LoraConfig.alpha", true),
    LORA_TARGETS("lora_targets", "LoRA targets", "--targets", "LoraConfig.targets", true),
    USE_RSLORA("use_rslora", "rsLoRA", "--rslora", "LoraConfig.rslora", true),
    INIT_ADAPTER(
        "init_adapter_sha256",
        "starting adapter (SHA-256 of its weights)",
        "--adapter",
        "initAdapter",
        true),
    SEED("seed", "seed", "--seed", "seed", true),
    DATA_SIZE("data_size", "training data size in bytes", "--data", "the Dataset", true),
    DATA_SHA256("data_sha256", "training data (SHA-256)", "--data", "the Dataset", true),
    DATA_FORMAT("data_format", "data format", "--format", "dataFormat", true),
    BATCH_SIZE("batch_size", "batch size", "--batch-size", "batchSize", true),
    GRADIENT_ACCUMULATION(
        "gradient_accumulation",
        "gradient accumulation",
        "--grad-accum",
        "gradientAccumulation",
        true),
    WORLD_SIZE(
        "world_size",
        "ranks in the group (world size)",
        "--nproc-per-node/--nnodes/WORLD_SIZE",
        "distributed",
        true),
    SCHEDULE("schedule", "learning-rate schedule", "--schedule/--warmup-steps", "schedule", true),
    MAX_STEPS("max_steps", "maximum steps", "--steps", "maxSteps", true),
    EPOCHS("epochs", "epochs", "--epochs", "epochs", true),
    TOTAL_STEPS("total_steps", "steps of the run", "--steps/--epochs", "maxSteps/epochs", true),
    MAX_SEQ_LENGTH(
        "max_seq_length", "maximum sequence length", "--max-seq-length", "maxSeqLength", true),
    COMPLETIONS_ONLY(
        "train_on_completions_only",
        "training on completions only",
        "--completions-only",
        "trainOnCompletionsOnly",
        true),
    PACKING("packing", "packing", "--packing", "packing", true),
    GROUP_BY_LENGTH(
        "group_by_length", "grouping by length", "--group-by-length", "groupByLength", true),
    SKIP_INVALID(
        "skip_invalid_lines", "skipping invalid lines", "--skip-invalid", "skipInvalidLines", true),
    SHUFFLE_BUFFER("shuffle_buffer", "shuffle buffer", "--shuffle-buffer", "shuffleBuffer", true),
    VALIDATION_FRACTION(
        "validation_fraction", "validation fraction", "--val-fraction", "validationFraction", true),
    MODEL_CONFIG(
        "model_config_sha256", "model (SHA-256 of config.json)", "--model", "the model", true),
    NF4_PROJECTIONS(
        "nf4_projections",
        "projection weights held in 4-bit NF4",
        "--load-in-4bit",
        "LoadOptions.quantization",
        true),
    LEARNING_RATE("learning_rate", "learning rate", "--lr", "learningRate", false),
    WEIGHT_DECAY("weight_decay", "weight decay", "--weight-decay", "weightDecay", false),
    ADAM_BETA1("adam_beta1", "AdamW beta1", "--adam-beta1", "betas", false),
    ADAM_BETA2("adam_beta2", "AdamW beta2", "--adam-beta2", "betas", false),
    ADAM_EPS("adam_eps", "AdamW epsilon", "--adam-eps", "adamEps", false),
    MAX_GRAD_NORM("max_grad_norm", "clipping norm", "--max-grad-norm", "maxGradNorm", false);

    private final String key;
    private final String label;
    private final String flag;
    private final String javaName;
    private final boolean fixed;

    Setting(String key, String label, String flag, String javaName, boolean fixed) {
      this.key = key;
      this.label = label;
      this.flag = flag;
      this.javaName = javaName;
      this.fixed = fixed;
    }

    /** Key in trainer_state.json. */
    public String key() {
      return key;
    }

    /** In words. */
    public String label() {
      return label;
    }

    /** The command-line flag that sets it. */
    public String flag() {
      return flag;
    }

    /** The Java setting that sets it. */
    public String javaName() {
      return javaName;
    }

    /** Whether a resume must keep it (else it may change on resume). */
    public boolean fixed() {
      return fixed;
    }
  }

  /** One setting that differs between a checkpoint and the run resuming it. */
  public record Difference(Setting setting, String checkpoint, String now) {
    /** "LoRA rank (LoraConfig.rank): 8 in the checkpoint, 4 now", with the Java or flag name. */
    public String describe(boolean flags) {
      return setting.label()
          + " ("
          + (flags ? setting.flag() : setting.javaName())
          + "): "
          + shown(checkpoint)
          + " in the checkpoint, "
          + shown(now)
          + " now";
    }

    /** "-" is recorded for epochs in a run bounded by steps. */
    private static String shown(String v) {
      return "-".equals(v) ? "not set (steps bound the run)" : v;
    }
  }

  /** A resume refused because fixed settings differ from the checkpoint's. */
  public static final class MismatchException extends Lora4jException {
    private static final long serialVersionUID = 1L;
    private final transient Path checkpoint;
    private final transient List<Difference> differences;

    public MismatchException(Path checkpoint, List<Difference> differences) {
      super(message(checkpoint, differences, false));
      this.checkpoint = checkpoint;
      this.differences = List.copyOf(differences);
    }

    /** The checkpoint that would have been resumed. */
    public Path checkpoint() {
      return checkpoint;
    }

    /** Every fixed setting that differs. */
    public List<Difference> differences() {
      return differences;
    }

    /** The message with command-line flags (flags true) or Java names. */
    public static String message(Path checkpoint, List<Difference> differences, boolean flags) {
      StringJoiner j = new StringJoiner("; ");
      for (Difference d : differences) j.add(d.describe(flags));
      return "cannot resume from "
          + checkpoint
          + ": it was made with other settings: "
          + j
          + ". Resume with the checkpoint's settings, or start again with "
          + (flags ? "--overwrite" : "overwriteOutput(true)")
          + " or another output folder";
    }
  }

  /**
   * The settings of a run about to start.
   *
   * @param cfg the training configuration
   * @param modelDir the model folder (its config.json is hashed)
   * @param dataFile the training file (size and SHA-256)
   * @param totalSteps steps of the run
   * @param nf4Projections the model's projection weights held in 4-bit NF4 (0: none)
   */
  public static RunSettings of(
      TrainingConfig cfg, Path modelDir, Path dataFile, long totalSteps, int nf4Projections) {
    EnumMap<Setting, String> v = new EnumMap<>(Setting.class);
    if (cfg.initAdapter() != null) {
      AdapterConfig a = AdapterConfig.load(cfg.initAdapter());
      lora(v, a.r(), a.loraAlpha(), a.targets(), a.useRslora());
      v.put(Setting.INIT_ADAPTER, sha256(cfg.initAdapter().resolve("adapter_model.safetensors")));
    } else {
      lora(v, cfg.lora().rank(), cfg.lora().alpha(), cfg.lora().targets(), cfg.lora().rslora());
      v.put(Setting.INIT_ADAPTER, "none"); // a resume given an adapter then differs
    }
    v.put(Setting.NF4_PROJECTIONS, Integer.toString(nf4Projections));
    v.put(Setting.SEED, Long.toString(cfg.seed()));
    try {
      v.put(Setting.DATA_SIZE, Long.toString(Files.size(dataFile)));
    } catch (IOException e) {
      throw new Lora4jException("cannot read " + dataFile + ": " + e, e);
    }
    v.put(Setting.DATA_SHA256, sha256(dataFile));
    v.put(
        Setting.DATA_FORMAT,
        cfg.dataFormat() == null ? "detected" : cfg.dataFormat().name().toLowerCase());
    v.put(Setting.BATCH_SIZE, Integer.toString(cfg.batchSize()));
    v.put(Setting.GRADIENT_ACCUMULATION, Integer.toString(cfg.gradientAccumulation()));
    v.put(Setting.WORLD_SIZE, Integer.toString(cfg.distributed().worldSize()));
    v.put(Setting.SCHEDULE, cfg.schedule().toString());
    v.put(Setting.MAX_STEPS, Long.toString(Math.max(0, cfg.maxSteps())));
    v.put(Setting.EPOCHS, cfg.maxSteps() > 0 ? "-" : Integer.toString(cfg.epochs()));
    v.put(Setting.TOTAL_STEPS, Long.toString(totalSteps));
    v.put(Setting.MAX_SEQ_LENGTH, Integer.toString(cfg.maxSeqLength()));
    v.put(Setting.COMPLETIONS_ONLY, String.valueOf(cfg.trainOnCompletionsOnly()));
    v.put(Setting.PACKING, Boolean.toString(cfg.packing()));
    v.put(Setting.GROUP_BY_LENGTH, Boolean.toString(cfg.groupByLength()));
    v.put(Setting.SKIP_INVALID, Boolean.toString(cfg.skipInvalidLines()));
    v.put(Setting.SHUFFLE_BUFFER, Integer.toString(cfg.shuffleBuffer()));
    v.put(
        Setting.VALIDATION_FRACTION,
        Double.toString(cfg.validationFile() == null ? cfg.validationFraction() : 0));
    v.put(Setting.MODEL_CONFIG, sha256(modelDir.resolve("config.json")));
    v.putAll(optimizerValues(cfg));
    return new RunSettings(Collections.unmodifiableMap(v));
  }

  /** The settings that may change on resume (the optimizer's), as recorded. */
  public static Map<Setting, String> optimizerValues(TrainingConfig cfg) {
    EnumMap<Setting, String> v = new EnumMap<>(Setting.class);
    v.put(Setting.LEARNING_RATE, Double.toString(cfg.learningRate()));
    v.put(Setting.WEIGHT_DECAY, Double.toString(cfg.weightDecay()));
    v.put(Setting.ADAM_BETA1, Double.toString(cfg.beta1()));
    v.put(Setting.ADAM_BETA2, Double.toString(cfg.beta2()));
    v.put(Setting.ADAM_EPS, Double.toString(cfg.adamEps()));
    v.put(Setting.MAX_GRAD_NORM, Double.toString(cfg.maxGradNorm()));
    return v;
  }

  /**
   * What an old checkpoint (without a record) still tells: the LoRA shape of its adapter and the
   * steps of its run.
   */
  public static RunSettings fromOldCheckpoint(AdapterConfig adapter, long totalSteps) {
    EnumMap<Setting, String> v = new EnumMap<>(Setting.class);
    lora(v, adapter.r(), adapter.loraAlpha(), adapter.targets(), adapter.useRslora());
    v.put(Setting.TOTAL_STEPS, Long.toString(totalSteps));
    return new RunSettings(Collections.unmodifiableMap(v));
  }

  private static void lora(
      Map<Setting, String> v, int rank, double alpha, Set<LoraTarget> targets, boolean rslora) {
    v.put(Setting.LORA_RANK, Integer.toString(rank));
    v.put(Setting.LORA_ALPHA, Double.toString(alpha));
    List<String> t = new ArrayList<>();
    for (LoraTarget x : targets) t.add(x.moduleName());
    Collections.sort(t);
    v.put(Setting.LORA_TARGETS, String.join(",", t));
    v.put(Setting.USE_RSLORA, Boolean.toString(rslora));
  }

  /** The value of a setting, or null when not recorded. */
  public String get(Setting s) {
    return values.get(s);
  }

  /**
   * The settings recorded here (a checkpoint's) that differ from now's, fixed ones first then those
   * that may change; settings recorded on one side only are not compared.
   */
  /**
   * The fixed settings the run records that this (a checkpoint's record) lacks, in declaration
   * order: not compared on resume (written by an earlier lora4j, or the file edited).
   */
  public List<Setting> unrecorded(RunSettings now) {
    List<Setting> out = new ArrayList<>();
    for (Setting s : now.values.keySet()) if (s.fixed() && !values.containsKey(s)) out.add(s);
    return out;
  }

  public List<Difference> differences(RunSettings now) {
    List<Difference> out = new ArrayList<>();
    for (boolean fixed : new boolean[] {true, false}) {
      for (Map.Entry<Setting, String> e : values.entrySet()) {
        if (e.getKey().fixed() != fixed) continue;
        String n = now.values.get(e.getKey());
        if (n != null && !n.equals(e.getValue()))
          out.add(new Difference(e.getKey(), e.getValue(), n));
      }
    }
    // One cause, one line: a different file also has a different checksum, other step settings
    // also give another step count.
    boolean sizeDiffers = out.stream().anyMatch(d -> d.setting() == Setting.DATA_SIZE);
    boolean otherFixed =
        out.stream().anyMatch(d -> d.setting().fixed() && d.setting() != Setting.TOTAL_STEPS);
    out.removeIf(
        d ->
            (sizeDiffers && d.setting() == Setting.DATA_SHA256)
                || (otherFixed && d.setting() == Setting.TOTAL_STEPS));
    return out;
  }

  /** Writes the settings into a JSON object. */
  public void writeTo(ObjectNode n) {
    for (Map.Entry<Setting, String> e : values.entrySet()) n.put(e.getKey().key(), e.getValue());
  }

  /** Reads settings written by {@link #writeTo}; unknown keys are ignored. */
  public static RunSettings read(JsonNode n) {
    EnumMap<Setting, String> v = new EnumMap<>(Setting.class);
    for (Setting s : Setting.values()) {
      JsonNode x = n.get(s.key());
      if (x != null && !x.isNull()) v.put(s, x.asText());
    }
    // checkpoints written before the setting existed did not group by length
    if (v.containsKey(Setting.PACKING)) v.putIfAbsent(Setting.GROUP_BY_LENGTH, "false");
    return new RunSettings(Collections.unmodifiableMap(v));
  }

  static String sha256(Path f) {
    try {
      return CheckpointStore.sha256(f);
    } catch (IOException e) {
      throw new Lora4jException("cannot read " + f + ": " + e, e);
    }
  }
}
