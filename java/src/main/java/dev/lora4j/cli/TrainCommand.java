package dev.lora4j.cli;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.lora4j.Dataset;
import dev.lora4j.GuardConfig;
import dev.lora4j.Lora4jException;
import dev.lora4j.LoraConfig;
import dev.lora4j.LoraTrainer;
import dev.lora4j.MistralModel;
import dev.lora4j.Schedule;
import dev.lora4j.TrainingConfig;
import dev.lora4j.TrainingListener;
import dev.lora4j.TrainingResult;
import dev.lora4j.data.DataFormat;
import dev.lora4j.io.JsonErrors;
import dev.lora4j.train.CheckpointStore;
import dev.lora4j.train.ProgressListener;
import dev.lora4j.train.RunSettings;
import java.io.IOException;
import java.nio.file.Path;
import java.util.Iterator;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.Callable;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

/** {@code train}: fine-tunes a LoRA adapter on a JSONL file and writes it in PEFT's layout. */
@Command(
    name = "train",
    mixinStandardHelpOptions = true,
    description = {
      "Fine-tune a LoRA adapter on a JSONL file; writes OUTPUT/adapter (PEFT layout),"
          + " OUTPUT/metrics.jsonl, OUTPUT/loss.png and checkpoints.",
      "Settings come from --config FILE.json (keys as TrainingConfig's, snake_case) and the"
          + " flags below; a flag wins over the file.",
      "Lines dropped or cut (invalid, not UTF-8, too long, nothing to learn) are counted, and the"
          + " first few named, in the progress output, in metrics.jsonl and in the summary.",
      ""
    })
final class TrainCommand implements Callable<Integer> {
  @Mixin ModelOptions modelOptions;

  @Option(
      names = "--data",
      required = true,
      paramLabel = "FILE.jsonl",
      description = "training data, one JSON example per line (UTF-8)")
  Path data;

  @Option(
      names = "--output",
      required = true,
      paramLabel = "DIR",
      description =
          "output folder: adapter/, metrics.jsonl, loss.png, checkpoint-N/; one holding"
              + " an earlier run needs --resume or --overwrite")
  Path output;

  @Option(
      names = "--overwrite",
      negatable = true,
      description =
          "delete the earlier run in --output first (its adapter, metrics, plot and"
              + " checkpoints; other files are kept) (default: refuse such a folder)")
  Boolean overwrite;

  @Option(
      names = "--config",
      paramLabel = "FILE.json",
      description =
          "training settings as JSON (keys as TrainingConfig's, snake_case; default: none)")
  Path config;

  @Option(
      names = "--adapter",
      paramLabel = "DIR",
      description = "start from this PEFT adapter instead of a new one (default: a new adapter)")
  Path adapter;

  @Option(names = "--rank", paramLabel = "R", description = "LoRA rank r (default: 8)")
  Integer rank;

  @Option(names = "--alpha", paramLabel = "A", description = "LoRA alpha (default: 8)")
  Double alpha;

  @Option(
      names = "--targets",
      paramLabel = "q_proj,...|all-linear",
      description =
          "projections to adapt: q_proj, k_proj, v_proj, o_proj, gate_proj, up_proj,"
              + " down_proj, or all-linear (default: q_proj,v_proj)")
  String targets;

  @Option(
      names = "--rslora",
      negatable = true,
      description = "scale by alpha/sqrt(r) instead of alpha/r (default: off)")
  Boolean rslora;

  @Option(names = "--lr", paramLabel = "LR", description = "peak learning rate (default: 2e-4)")
  Double lr;

  @Option(
      names = "--schedule",
      paramLabel = "constant|linear|cosine",
      description = "learning-rate schedule after the warmup (default: linear)")
  String schedule;

  @Option(
      names = "--warmup-steps",
      paramLabel = "N",
      description = "steps of linear warmup from 0 to --lr (default: 0)")
  Integer warmupSteps;

  @Option(
      names = "--weight-decay",
      paramLabel = "W",
      description = "AdamW weight decay (default: 0)")
  Double weightDecay;

  @Option(names = "--adam-beta1", paramLabel = "B1", description = "AdamW beta1 (default: 0.9)")
  Double beta1;

  @Option(names = "--adam-beta2", paramLabel = "B2", description = "AdamW beta2 (default: 0.999)")
  Double beta2;

  @Option(names = "--adam-eps", paramLabel = "EPS", description = "AdamW epsilon (default: 1e-8)")
  Double eps;

  @Option(
      names = "--max-grad-norm",
      paramLabel = "N",
      description = "gradient clipping norm, 0 for none (default: 1.0)")
  Double maxGradNorm;

  @Option(
      names = "--batch-size",
      paramLabel = "N",
      description = "rows per micro-batch (default: 4)")
  Integer batchSize;

  @Option(
      names = "--grad-accum",
      paramLabel = "N",
      description = "micro-batches per optimizer step (default: 1)")
  Integer gradAccum;

  @Option(
      names = "--steps",
      paramLabel = "N",
      description = "optimizer steps; replaces --epochs (default: as many as --epochs make)")
  Long steps;

  @Option(names = "--epochs", paramLabel = "N", description = "passes over the data (default: 1)")
  Integer epochs;

  @Option(
      names = "--max-seq-length",
      paramLabel = "N",
      description = "longest row in tokens; longer examples are cut and reported (default: 2048)")
  Integer maxSeqLength;

  @Option(
      names = "--completions-only",
      negatable = true,
      description =
          "train on completions / assistant turns only; examples with nothing left to"
              + " learn are dropped and reported (default: as TRL's SFTTrainer, on for prompt /"
              + " completion and Alpaca data, off for chat, text and input_ids)")
  Boolean completionsOnly;

  @Option(
      names = "--packing",
      negatable = true,
      description = "pack several examples per row (default: off, one per row)")
  Boolean packing;

  @Option(
      names = "--group-by-length",
      negatable = true,
      description =
          "without --packing: batch examples of similar length (groups of 50 batches sorted by"
              + " length, as Hugging Face's group_by_length), so less of each batch is padding"
              + " (default: off)")
  Boolean groupByLength;

  @Option(
      names = "--format",
      paramLabel = "text|prompt_completion|alpaca|chat|pretokenized",
      description = "data format (default: detected from the first valid line)")
  String format;

  @Option(
      names = "--skip-invalid",
      negatable = true,
      description =
          "skip bad lines (malformed, not UTF-8), count them and report the first few"
              + " (default: off, the first bad line is an error)")
  Boolean skipInvalid;

  @Option(
      names = "--shuffle-buffer",
      paramLabel = "N",
      description = "examples held for shuffling, 0 for file order (default: 10000)")
  Integer shuffleBuffer;

  @Option(
      names = "--seed",
      paramLabel = "N",
      description = "seed of the adapter and the shuffle (default: 42)")
  Long seed;

  @Option(
      names = "--eval-data",
      paramLabel = "FILE.jsonl",
      description = "validation data (default: none)")
  Path evalData;

  @Option(
      names = "--val-fraction",
      paramLabel = "F",
      description =
          "fraction of --data held out for validation: each line with probability F, chosen by"
              + " a hash of its line number and --seed, so about F of the lines, the same ones"
              + " on every pass and resume (default: 0)")
  Double valFraction;

  @Option(
      names = "--forgetting-data",
      paramLabel = "FILE.jsonl",
      description =
          "general data unrelated to the task (any format --data takes, typically plain text): its"
              + " loss is evaluated with the base model once and with the adapter at every"
              + " evaluation, beside the task's (default: none)")
  Path forgettingData;

  @Option(
      names = "--forgetting-warn",
      paramLabel = "F",
      description =
          "warn when the loss on --forgetting-data rises by more than this fraction of the"
              + " base model's (default: 0.05)")
  Double forgettingWarn;

  @Option(
      names = "--eval-steps",
      paramLabel = "N",
      description = "evaluate every N steps (default: 0, at the end only)")
  Long evalSteps;

  @Option(
      names = "--early-stopping-patience",
      paramLabel = "N",
      description =
          "stop once N evaluations in a row (every --eval-steps) have not improved the"
              + " validation loss, as Hugging Face's EarlyStoppingCallback; needs --eval-steps and"
              + " --eval-data or --val-fraction (default: 0, never)")
  Integer earlyStoppingPatience;

  @Option(
      names = "--early-stopping-threshold",
      paramLabel = "F",
      description =
          "how much an evaluation must lower the best validation loss so far to count as an"
              + " improvement (default: 0, any decrease)")
  Double earlyStoppingThreshold;

  @Option(
      names = "--log-steps",
      paramLabel = "N",
      description =
          "a progress line every N steps, its loss the mean since the last line, as Hugging"
              + " Face's Trainer logs it; metrics.jsonl has every step (default: 10)")
  Long logSteps;

  @Option(
      names = "--save-steps",
      paramLabel = "N",
      description = "write a checkpoint every N steps (default: 0, none)")
  Long saveSteps;

  @Option(names = "--save-limit", paramLabel = "N", description = "checkpoints kept (default: 2)")
  Integer saveLimit;

  @Option(
      names = "--resume",
      negatable = true,
      description =
          "continue from the latest checkpoint in --output; an error when there is none"
              + " or when it was made with other settings (default: off)")
  Boolean resume;

  @Option(
      names = "--no-guard",
      negatable = true,
      description =
          "turn the poisoned-batch guard off (default: on; --guard turns it on over a --config"
              + " file's \"guard\": false)")
  Boolean noGuard;

  @Option(
      names = "--guard-loss-factor",
      paramLabel = "F",
      description = "reject a step whose loss is this many times the running median (default: 3)")
  Double guardLossFactor;

  @Option(
      names = "--guard-grad-factor",
      paramLabel = "F",
      description =
          "reject a step whose gradient norm is this many times the running median (default: 10)")
  Double guardGradFactor;

  @Option(
      names = "--aggregation",
      paramLabel = "mean|median|trimmed-mean[:f]|krum[:f]|centered-clip",
      description =
          "how the gradients of a step's workers (each rank x micro-batch) are combined;"
              + " median and trimmed-mean tolerate f < n/2 faulty workers, krum needs n > 2f + 2;"
              + " median, trimmed-mean and centered-clip first mix each worker with its nearest"
              + " others unless the rule ends in :no-mixing (default: mean)")
  String aggregation;

  @Option(
      names = "--inject-fault",
      paramLabel = "KIND[:ARG]@WORKER[,...]",
      description =
          "faulty workers on purpose, for testing: gradient-scale:S, gradient-noise:SIGMA,"
              + " nan, random-tokens, alie:Z (default: none)")
  String injectFault;

  @Option(
      names = "--nproc-per-node",
      paramLabel = "K",
      description =
          "start K worker processes on this host, one per GPU (rank i uses cuda:i), and supervise"
              + " them: their output prefixed [rank i]; if one fails the others are stopped"
              + " (default: none, this process trains)")
  Integer nprocPerNode;

  @Option(
      names = "--nnodes",
      paramLabel = "N",
      description =
          "hosts in the group; the group has N x --nproc-per-node ranks (default: 1, or as"
              + " WORLD_SIZE says)")
  Integer nnodes;

  @Option(
      names = "--node-rank",
      paramLabel = "R",
      description = "this host's number, 0 .. N - 1; node 0 holds rank 0 (default: 0)")
  Integer nodeRank;

  @Option(
      names = "--master-addr",
      paramLabel = "HOST",
      description =
          "address of node 0, where the ranks meet (default: MASTER_ADDR, else 127.0.0.1)")
  String masterAddr;

  @Option(
      names = "--master-port",
      paramLabel = "PORT",
      description = "port of the rendezvous on node 0 (default: MASTER_PORT, else 29500)")
  Integer masterPort;

  @CommandLine.Spec CommandLine.Model.CommandSpec spec;

  /** Settings given in --config (snake_case keys), for telling an explicit value from a default. */
  private final java.util.Set<String> configKeys = new java.util.HashSet<>();

  @Override
  public Integer call() throws Exception {
    LaunchPlan plan =
        LaunchPlan.resolve(nnodes, nodeRank, masterAddr, masterPort, nprocPerNode, System.getenv());
    // Refused before anything starts: a device that cannot serve the group.
    String typedDevice = plan.device(modelOptions.device, plan.group().localRank());
    TrainingConfig cfg = settings();
    if (plan.mode() == LaunchPlan.Mode.SUPERVISOR) {
      for (int i = 0; i < plan.nproc(); i++) plan.device(modelOptions.device, i);
      // --device auto (the default) in a group means a GPU a rank: on a host without one, said
      // once here rather than by every worker after it started
      String noGpu =
          plan.worldSize() > 1 && modelOptions.device.trim().equalsIgnoreCase("auto")
              ? dev.lora4j.Device.cudaUnavailableReason()
              : null;
      if (noGpu != null) {
        throw new IllegalArgumentException(
            "--device auto finds no usable GPU here ("
                + noGpu
                + ") and a group of "
                + plan.worldSize()
                + " ranks trains on GPUs only: the CPU backend has no collectives (on the CPU,"
                + " one process with --grad-accum has the same virtual workers)");
      }
      // what every worker would find missing after starting and loading the model: said once
      Dataset.jsonl(data);
      dev.lora4j.model.MistralConfig.fileIn(modelOptions.model);
      List<String> args =
          new java.util.ArrayList<>(spec.commandLine().getParseResult().originalArgs());
      if (!args.isEmpty() && args.get(0).equals(spec.name())) args.remove(0);
      return new Supervisor(plan, Supervisor.withoutLauncherFlags(args), System.out, System.err)
          .run();
    }
    watchSupervisor();
    if (plan.mode() == LaunchPlan.Mode.RANK) {
      cfg = cfg.toBuilder().distributed(plan.group()).build();
      // A rank that outlives a lost peer by 30 s (stuck where the abort cannot reach) halts.
      if (System.getProperty("lora4j.dist.haltAfterLostSeconds") == null)
        System.setProperty("lora4j.dist.haltAfterLostSeconds", "30");
    }
    if (cfg.resume()) checkOptimizerFlagsOnResume(cfg);
    try (MistralModel model = modelOptions.load(typedDevice, cfg.maxSeqLength())) {
      InterruptNote note = new InterruptNote(cfg.saveSteps());
      List<TrainingListener> ls =
          List.of(
              new ProgressListener(
                  System.err,
                  ProgressListener.stderrIsTerminal(),
                  cfg.loggingSteps(),
                  Flags::translate),
              note);
      TrainingResult r;
      Thread hook = new Thread(() -> note.print(System.err), "lora4j-interrupt-note");
      Runtime.getRuntime().addShutdownHook(hook);
      try {
        r = LoraTrainer.fit(model, Dataset.jsonl(data), cfg, ls);
      } catch (RunSettings.MismatchException e) {
        throw new Lora4jException(
            RunSettings.MismatchException.message(e.checkpoint(), e.differences(), true), e);
      } finally {
        note.finished();
        try {
          Runtime.getRuntime().removeShutdownHook(hook);
        } catch (IllegalStateException shuttingDown) {
          // the JVM is already shutting down: the hook has run or runs now
        }
      }
      System.out.printf(
          Locale.ROOT,
          "adapter: %s%nsteps: %d (skipped %d)%nloss: %s%n",
          r.adapterDir(),
          r.steps(),
          r.skippedSteps(),
          r.lossChange());
      if (r.finalEvaluation() != null) {
        var e = r.finalEvaluation();
        if (e.hasTask()) {
          System.out.printf(
              Locale.ROOT,
              "eval loss: %.4f (base model %.4f, task loss gain %.4f)%n",
              e.loss(),
              e.baseLoss(),
              e.taskGain());
        }
        if (e.hasGeneral()) {
          System.out.printf(
              Locale.ROOT,
              "general-data loss: %.4f (base model %.4f, %+.1f%%)%n",
              e.generalLoss(),
              e.baseGeneralLoss(),
              100 * e.generalChange());
        }
      }
      if (r.rejectedBatches() > 0) {
        System.out.println(
            "rejected batches: "
                + r.rejectedBatches()
                + " (refused twice by the guard, the aggregation rule or for a non-finite gradient,"
                + " not trained on; each with its data position in "
                + output.resolve("rejected.jsonl")
                + ")");
      }
      System.out.println("training data: " + Flags.translate(r.trainData().describe()));
      if (r.validationData() != null)
        System.out.println("validation data: " + Flags.translate(r.validationData().describe()));
      if (r.forgettingData() != null)
        System.out.println("forgetting data: " + Flags.translate(r.forgettingData().describe()));
      for (String w : r.warnings()) System.out.println("warning: " + Flags.translate(w));
    }
    return 0;
  }

  /**
   * A worker of {@code --nproc-per-node} ends when its supervisor is gone (killed with SIGKILL, it
   * could not stop its workers), instead of training on alone.
   */
  static void watchSupervisor() {
    String pid = System.getenv("LORA4J_SUPERVISOR_PID");
    if (pid == null || pid.isBlank()) return;
    java.util.Optional<ProcessHandle> sup;
    try {
      sup = ProcessHandle.of(Long.parseLong(pid.trim()));
    } catch (NumberFormatException e) {
      return;
    }
    Runnable gone =
        () -> {
          System.err.println(
              "lora4j train: error: the supervisor (process "
                  + pid
                  + ") is gone; this worker stops");
          Runtime.getRuntime().halt(1);
        };
    if (sup.isEmpty()) gone.run();
    else sup.get().onExit().thenRun(gone);
  }

  /**
   * On --resume, an optimizer setting may differ from the checkpoint's only when typed: a flag left
   * out (so at its default) that differs from the run being resumed is an error.
   */
  void checkOptimizerFlagsOnResume(TrainingConfig cfg) {
    Path ck = new CheckpointStore(output, Integer.MAX_VALUE).latestIntact(false);
    if (ck == null) return; // the trainer reports it
    RunSettings recorded = CheckpointStore.readSettings(ck);
    if (recorded == null) return;
    Map<RunSettings.Setting, Boolean> typed = new java.util.EnumMap<>(RunSettings.Setting.class);
    typed.put(
        RunSettings.Setting.LEARNING_RATE, lr != null || configKeys.contains("learning_rate"));
    typed.put(
        RunSettings.Setting.WEIGHT_DECAY,
        weightDecay != null || configKeys.contains("weight_decay"));
    typed.put(RunSettings.Setting.ADAM_BETA1, beta1 != null);
    typed.put(RunSettings.Setting.ADAM_BETA2, beta2 != null);
    typed.put(RunSettings.Setting.ADAM_EPS, eps != null || configKeys.contains("adam_eps"));
    typed.put(
        RunSettings.Setting.MAX_GRAD_NORM,
        maxGradNorm != null || configKeys.contains("max_grad_norm"));
    Map<RunSettings.Setting, String> now = RunSettings.optimizerValues(cfg);
    List<String> problems = new java.util.ArrayList<>();
    for (Map.Entry<RunSettings.Setting, Boolean> e : typed.entrySet()) {
      String was = recorded.get(e.getKey()), is = now.get(e.getKey());
      if (!e.getValue() && was != null && !was.equals(is)) {
        problems.add(
            e.getKey().label()
                + " "
                + was
                + " in the checkpoint, "
                + is
                + " now (the default):"
                + " give "
                + e.getKey().flag()
                + " "
                + was
                + " to keep it, or "
                + e.getKey().flag()
                + " with a new value to change it");
      }
    }
    if (!problems.isEmpty()) {
      throw new Lora4jException("cannot resume from " + ck + ": " + String.join("; ", problems));
    }
  }

  TrainingConfig settings() throws IOException {
    TrainingConfig.Builder b = TrainingConfig.builder().outputDir(output);
    LoraConfig.Builder lb = LoraConfig.builder();
    // the file's guard settings, applied after the flags (a typed --guard / --no-guard wins)
    Boolean fileGuard = null;
    Double fileLossFactor = null, fileGradFactor = null;
    String sched = "linear";
    int warmup = 0;
    if (config != null) {
      JsonNode root;
      try {
        // a key given twice is an error, not the last one silently winning
        root =
            new ObjectMapper()
                .enable(com.fasterxml.jackson.core.JsonParser.Feature.STRICT_DUPLICATE_DETECTION)
                .readTree(config.toFile());
      } catch (com.fasterxml.jackson.core.JsonProcessingException e) {
        com.fasterxml.jackson.core.JsonLocation at = e.getLocation();
        throw new ConfigFileException(
            config
                + (at != null && at.getLineNr() > 0 ? ":" + at.getLineNr() : "")
                + ": not valid JSON: "
                + JsonErrors.describe(e));
      } catch (IOException e) {
        throw new ConfigFileException(config + ": cannot read: " + e.getMessage());
      }
      if (!root.isObject()) throw new ConfigFileException(config + ": must hold a JSON object");
      for (Iterator<Map.Entry<String, JsonNode>> it = root.fields(); it.hasNext(); ) {
        Map.Entry<String, JsonNode> e = it.next();
        JsonNode v = e.getValue();
        String k = e.getKey();
        configKeys.add(k);
        ConfigValue c = new ConfigValue(config, k, v);
        try {
          switch (k) {
            case "epochs" -> b.epochs(c.asInt());
            case "max_steps" -> b.maxSteps(c.asLong());
            case "batch_size" -> b.batchSize(c.asInt());
            case "gradient_accumulation" -> b.gradientAccumulation(c.asInt());
            case "learning_rate" -> b.learningRate(c.asDouble());
            case "schedule" -> sched = c.asText();
            case "warmup_steps" -> {
              warmup = c.asInt();
              if (warmup < 0) throw new IllegalArgumentException("must be >= 0, got " + warmup);
            }
            case "weight_decay" -> b.weightDecay(c.asDouble());
            case "max_grad_norm" -> b.maxGradNorm(c.asDouble());
            case "adam_eps" -> b.adamEps(c.asDouble());
            case "max_seq_length" -> b.maxSeqLength(c.asInt());
            case "train_on_completions_only" -> b.trainOnCompletionsOnly(c.asBoolean());
            case "packing" -> b.packing(c.asBoolean());
            case "group_by_length" -> b.groupByLength(c.asBoolean());
            case "data_format" -> b.dataFormat(parseFormat(c.asText()));
            case "skip_invalid_lines" -> b.skipInvalidLines(c.asBoolean());
            case "shuffle_buffer" -> b.shuffleBuffer(c.asInt());
            case "seed" -> b.seed(c.asLong());
            case "validation_file" -> b.validationFile(Path.of(c.asText()));
            case "validation_fraction" -> b.validationFraction(c.asDouble());
            case "eval_steps" -> b.evalSteps(c.asLong());
            case "early_stopping_patience" -> b.earlyStoppingPatience(c.asInt());
            case "early_stopping_threshold" -> b.earlyStoppingThreshold(c.asDouble());
            case "forgetting_data" -> b.forgettingData(Path.of(c.asText()));
            case "forgetting_warn" -> b.forgettingWarn(c.asDouble());
            case "logging_steps" -> b.loggingSteps(c.asLong());
            case "save_steps" -> b.saveSteps(c.asLong());
            case "save_total_limit" -> b.saveTotalLimit(c.asInt());
            case "resume" -> b.resume(c.asBoolean());
            case "overwrite_output" -> b.overwriteOutput(c.asBoolean());
            case "init_adapter" -> b.initAdapter(Path.of(c.asText()));
            case "lora_rank" -> lb.rank(c.asInt());
            case "lora_alpha" -> lb.alpha(c.asDouble());
            case "lora_targets" -> lb.targets(c.asTextOrList());
            case "use_rslora" -> lb.rslora(c.asBoolean());
            case "guard" -> fileGuard = c.asBoolean();
            case "guard_loss_factor" -> {
              fileLossFactor = c.asDouble();
              GuardConfig.defaults().withLossFactor(fileLossFactor); // a refusal names the key
            }
            case "guard_grad_norm_factor" -> {
              fileGradFactor = c.asDouble();
              GuardConfig.defaults().withGradNormFactor(fileGradFactor);
            }
            case "aggregation" -> b.aggregation(c.asText());
            case "inject_faults" -> b.injectFaults(c.asText());
            default -> throw new ConfigFileException(config + ": unknown key '" + k + "'");
          }
        } catch (IllegalArgumentException refused) {
          // a value the builder refuses at once: named by the file and key, not by a flag
          throw new ConfigFileException(config + ": key '" + k + "': " + refused.getMessage());
        }
      }
    }
    if (adapter != null) b.initAdapter(adapter);
    if (rank != null) lb.rank(rank);
    if (alpha != null) lb.alpha(alpha);
    if (targets != null) lb.targets(targets);
    if (rslora != null) lb.rslora(rslora);
    if (lr != null) b.learningRate(lr);
    if (schedule != null) sched = schedule;
    if (warmupSteps != null) warmup = warmupSteps;
    if (weightDecay != null) b.weightDecay(weightDecay);
    if (beta1 != null || beta2 != null)
      b.betas(beta1 == null ? 0.9 : beta1, beta2 == null ? 0.999 : beta2);
    if (eps != null) b.adamEps(eps);
    if (maxGradNorm != null) b.maxGradNorm(maxGradNorm);
    if (batchSize != null) b.batchSize(batchSize);
    if (gradAccum != null) b.gradientAccumulation(gradAccum);
    if (steps != null && steps < 0) {
      throw new IllegalArgumentException(
          "--steps must be >= 1, or 0 for none (--epochs decides the run's length), got " + steps);
    }
    if (epochs != null && epochs < 1)
      throw new IllegalArgumentException("--epochs must be >= 1, got " + epochs);
    if (steps != null) b.maxSteps(steps);
    if (epochs != null) b.epochs(epochs);
    // a flag wins over the file: --epochs typed against the file's max_steps (which would
    // otherwise decide the run's length) leaves epochs to decide
    if (epochs != null && steps == null && configKeys.contains("max_steps")) b.maxSteps(0);
    if (maxSeqLength != null) b.maxSeqLength(maxSeqLength);
    if (completionsOnly != null) b.trainOnCompletionsOnly(completionsOnly);
    if (packing != null) b.packing(packing);
    if (groupByLength != null) b.groupByLength(groupByLength);
    if (format != null) b.dataFormat(parseFormat(format));
    if (skipInvalid != null) b.skipInvalidLines(skipInvalid);
    if (shuffleBuffer != null) b.shuffleBuffer(shuffleBuffer);
    if (seed != null) b.seed(seed);
    if (evalData != null) b.validationFile(evalData);
    if (valFraction != null) b.validationFraction(valFraction);
    if (evalSteps != null) b.evalSteps(evalSteps);
    if (earlyStoppingPatience != null) b.earlyStoppingPatience(earlyStoppingPatience);
    if (earlyStoppingThreshold != null) b.earlyStoppingThreshold(earlyStoppingThreshold);
    if (forgettingData != null) b.forgettingData(forgettingData);
    if (forgettingWarn != null) b.forgettingWarn(forgettingWarn);
    if (logSteps != null) b.loggingSteps(logSteps);
    if (saveSteps != null) b.saveSteps(saveSteps);
    if (saveLimit != null) b.saveTotalLimit(saveLimit);
    if (resume != null) b.resume(resume);
    if (overwrite != null) b.overwriteOutput(overwrite);
    boolean off = noGuard != null ? noGuard : Boolean.FALSE.equals(fileGuard);
    Double lossFactor = guardLossFactor != null ? guardLossFactor : fileLossFactor;
    Double gradFactor = guardGradFactor != null ? guardGradFactor : fileGradFactor;
    // a factor of a guard that is off would be dropped without a word
    if (off && (lossFactor != null || gradFactor != null)) {
      throw new IllegalArgumentException(
          "the guard's factors (--guard-loss-factor, --guard-grad-factor or their --config keys)"
              + " go with the guard on, but --no-guard (or the file's \"guard\": false) turns it"
              + " off: drop one or the other");
    }
    GuardConfig guard = off ? GuardConfig.off() : GuardConfig.defaults();
    if (lossFactor != null) guard = guard.withLossFactor(lossFactor);
    if (gradFactor != null) guard = guard.withGradNormFactor(gradFactor);
    if (aggregation != null) b.aggregation(aggregation);
    if (injectFault != null) b.injectFaults(injectFault);
    // a starting adapter fixes its own rank, alpha, targets and scaling (its adapter_config.json):
    // settings of a new adapter beside it would be dropped without a word
    if (adapter != null || configKeys.contains("init_adapter")) {
      List<String> shape = new java.util.ArrayList<>();
      if (rank != null) shape.add("--rank");
      if (alpha != null) shape.add("--alpha");
      if (targets != null) shape.add("--targets");
      if (rslora != null) shape.add("--rslora");
      for (String k : List.of("lora_rank", "lora_alpha", "lora_targets", "use_rslora")) {
        if (configKeys.contains(k)) shape.add(config + " key '" + k + "'");
      }
      if (!shape.isEmpty()) {
        throw new IllegalArgumentException(
            String.join(", ", shape)
                + (shape.size() == 1 ? " sets" : " set")
                + " the shape of a new adapter, but the run starts from "
                + (adapter != null ? "--adapter " + adapter : config + " key 'init_adapter'")
                + ", whose adapter_config.json fixes its rank, alpha, targets and scaling: leave"
                + (shape.size() == 1 ? " it" : " them")
                + " out, or start a new adapter without --adapter");
      }
    }
    b.schedule(Schedule.parse(sched).warmupSteps(warmup));
    b.guard(guard);
    try {
      return b.lora(lb.build()).build();
    } catch (IllegalArgumentException e) {
      throw fromFileOrFlags(e);
    }
  }

  /**
   * A setting refused when the whole configuration is built: with a --config file it may have come
   * from the file or from a flag, so the message says both.
   */
  private IllegalArgumentException fromFileOrFlags(IllegalArgumentException e) {
    if (config == null) return e;
    return new IllegalArgumentException(
        e.getMessage() + " (from the flag or its key in " + config + ")", e);
  }

  /** An error in the --config file: it names the file and key and is printed as it is. */
  static final class ConfigFileException extends Lora4jException {
    private static final long serialVersionUID = 1L;

    ConfigFileException(String message) {
      super(message);
    }
  }

  /**
   * One value of the --config file, read strictly: a value of the wrong JSON type (a string for a
   * number, a number for a boolean, a fraction for a count) is an error naming the file and the
   * key, where Jackson's lenient conversions would make "abc" a learning rate of 0.
   */
  record ConfigValue(Path file, String key, JsonNode v) {
    private ConfigFileException wrong(String want) {
      return new ConfigFileException(file + ": key '" + key + "' must be " + want + ", not " + v);
    }

    /** A whole number written as 3, 3.0 or 3e0; a fraction or a string is refused. */
    private long whole(long min, long max) {
      if (!v.isNumber()) throw wrong("a whole number");
      if (v.isIntegralNumber()) {
        if (v.isBigInteger() || v.longValue() < min || v.longValue() > max)
          throw wrong("a whole number in range");
        return v.longValue();
      }
      double d = v.doubleValue();
      if (d != Math.rint(d)) throw wrong("a whole number");
      if (!(d >= min && d <= max)) throw wrong("a whole number in range");
      return (long) d;
    }

    int asInt() {
      return (int) whole(Integer.MIN_VALUE, Integer.MAX_VALUE);
    }

    long asLong() {
      return whole(Long.MIN_VALUE, Long.MAX_VALUE);
    }

    double asDouble() {
      if (!v.isNumber()) throw wrong("a number");
      return v.doubleValue();
    }

    boolean asBoolean() {
      if (!v.isBoolean()) throw wrong("true or false");
      return v.booleanValue();
    }

    String asText() {
      if (!v.isTextual()) throw wrong("a string");
      return v.textValue();
    }

    /** A string, or an array of strings joined with commas. */
    String asTextOrList() {
      if (v.isTextual()) return v.textValue();
      if (!v.isArray()) throw wrong("a string or an array of strings");
      List<String> out = new java.util.ArrayList<>();
      for (JsonNode x : v) {
        if (!x.isTextual()) throw wrong("a string or an array of strings");
        out.add(x.textValue());
      }
      return String.join(",", out);
    }
  }

  static DataFormat parseFormat(String s) {
    String v = s.trim().toUpperCase(Locale.ROOT).replace('-', '_').replace('/', '_');
    if (v.equals("PROMPT_COMPLETION") || v.equals("COMPLETION"))
      return DataFormat.PROMPT_COMPLETION;
    try {
      return DataFormat.valueOf(v);
    } catch (IllegalArgumentException e) {
      throw new IllegalArgumentException(
          "unknown data format '"
              + s
              + "': use text, prompt_completion, alpaca, chat or pretokenized");
    }
  }

  /**
   * What a run stopped by a signal (Ctrl-C, SIGTERM) leaves: the JVM's shutdown runs {@link #print}
   * while the training thread is still inside fit, and the user learns the step reached, the
   * checkpoint a --resume would continue from, or that none was written.
   */
  static final class InterruptNote implements TrainingListener {
    private final long saveSteps;
    private volatile long step, total;
    private volatile Path checkpoint;
    private volatile boolean finished;

    InterruptNote(long saveSteps) {
      this.saveSteps = saveSteps;
    }

    @Override
    public void onTrainBegin(TrainingPlan plan) {
      total = plan.totalSteps();
      step = plan.startStep();
    }

    @Override
    public void onStep(StepMetrics m) {
      step = m.step();
    }

    @Override
    public void onCheckpoint(Path dir, long atStep) {
      checkpoint = dir;
    }

    void finished() {
      finished = true;
    }

    /** The note, when the run has not finished (nothing otherwise). */
    void print(java.io.PrintStream err) {
      if (finished) return;
      String where = total > 0 ? " at step " + step + " of " + total : " before its first step";
      String kept =
          checkpoint != null
              ? "the last checkpoint is "
                  + checkpoint
                  + ": the same command with --resume continues from it"
              : saveSteps > 0
                  ? "no checkpoint was written yet (every "
                      + saveSteps
                      + " steps): the steps so far are lost"
                  : "no checkpoint is written without --save-steps N: the steps so far are lost";
      err.println("lora4j: training stopped by a signal" + where + "; " + kept);
      err.flush();
    }
  }
}
