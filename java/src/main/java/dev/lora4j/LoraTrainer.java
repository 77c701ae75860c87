package dev.lora4j;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.lora4j.data.BatchIterator;
import dev.lora4j.data.DataBatch;
import dev.lora4j.data.DataConfig;
import dev.lora4j.data.DataFormat;
import dev.lora4j.data.DataPosition;
import dev.lora4j.data.DataReport;
import dev.lora4j.data.DataStats;
import dev.lora4j.data.JsonlDataset;
import dev.lora4j.dist.GroupLink;
import dev.lora4j.dist.Rendezvous;
import dev.lora4j.model.peft.AdapterConfig;
import dev.lora4j.nativ.Lora4jLibrary;
import dev.lora4j.nativ.NativeException;
import dev.lora4j.train.CheckpointStore;
import dev.lora4j.train.EarlyStopping;
import dev.lora4j.train.Listeners;
import dev.lora4j.train.LossPlot;
import dev.lora4j.train.MetricsFile;
import dev.lora4j.train.PoisonGuard;
import dev.lora4j.train.ProgressListener;
import dev.lora4j.train.RunFolder;
import dev.lora4j.train.RunSettings;
import dev.lora4j.train.StepTimes;
import dev.lora4j.train.TrainerState;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.FloatBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.logging.Logger;

/**
 * Fine-tunes a {@link MistralModel} with LoRA on a JSONL dataset: one call from data to a PEFT
 * adapter.
 *
 * <pre>{@code
 * try (MistralModel base = MistralModel.load(Path.of("mistral-7b"), Device.auto())) {
 *   TrainingConfig cfg = TrainingConfig.builder().outputDir(Path.of("results"))
 *       .epochs(1).batchSize(4).gradientAccumulation(4).learningRate(2e-4)
 *       .schedule(Schedule.cosine().warmupSteps(10)).maxSeqLength(2048)
 *       .lora(LoraConfig.builder().rank(16).alpha(16).allLinear().build())
 *       .trainOnCompletionsOnly(true).packing(true).build();
 *   TrainingResult result = LoraTrainer.fit(base, Dataset.jsonl(Path.of("train.jsonl")), cfg);
 * }
 * }</pre>
 *
 * <p>Each optimizer step takes {@code gradientAccumulation} batches, normalizes the loss over all
 * their label tokens (the same gradient as one big batch), clips, and applies AdamW at the
 * scheduled learning rate. The run writes {@code metrics.jsonl}, {@code loss.png}, checkpoints
 * every {@code saveSteps} (resumable exactly), and the final adapter to {@code outputDir/adapter}.
 * Evaluation (every {@code evalSteps} and at the end) reports the validation loss of the fine-tuned
 * model next to the base model's and, with {@code forgettingData}, the loss on general data of both
 * (the forgetting check), warning when it rose by more than {@code forgettingWarn}.
 *
 * <p>Any adapter attached to the model when fit starts is replaced by the one trained.
 */
public final class LoraTrainer {
  private static final Logger LOG = Logger.getLogger(LoraTrainer.class.getName());
  private static final ObjectMapper JSON = new ObjectMapper();

  private LoraTrainer() {}

  /** Trains with a progress display on the console and the standard output files. */
  public static TrainingResult fit(MistralModel model, Dataset data, TrainingConfig cfg) {
    java.util.Objects.requireNonNull(cfg, "cfg");
    return fit(
        model,
        data,
        cfg,
        List.of(
            new ProgressListener(
                System.err, ProgressListener.stderrIsTerminal(), cfg.loggingSteps(), s -> s)));
  }

  /** Trains and reports every event to the listeners (the output files are always written). */
  public static TrainingResult fit(
      MistralModel model, Dataset data, TrainingConfig cfg, List<TrainingListener> listeners) {
    java.util.Objects.requireNonNull(model, "model");
    java.util.Objects.requireNonNull(data, "data");
    java.util.Objects.requireNonNull(cfg, "cfg");
    java.util.Objects.requireNonNull(listeners, "listeners");
    for (int i = 0; i < listeners.size(); i++)
      java.util.Objects.requireNonNull(listeners.get(i), "listeners[" + i + "]");
    model.requireOpen();
    // A step is many engine calls (gradients zeroed, forward-backward, norm, optimizer): two runs
    // on one model would interleave them and train one mixed adapter without a word.
    if (!model.beginTraining()) {
      throw new IllegalStateException(
          "the model is already training in another fit: a model trains one run at a time (load a"
              + " second model for a second run)");
    }
    try {
      return new Run(model, data, cfg, listeners).run();
    } finally {
      model.endTraining();
    }
  }

  /**
   * The loss of the model as it is (with its adapter when one is attached) over a whole JSONL file,
   * in file order, read as {@link #fit} reads training data under cfg: its format (or the
   * dataset's), trainOnCompletionsOnly, maxSeqLength (and the model's positions), batchSize,
   * packing and skipInvalidLines; no validation split is taken. For the file fit was given as
   * validationFile, with the Dataset's format fit's training Dataset had (fit reads the validation
   * file in that format), {@code LossSum.mean()} is the validation loss fit reports: with
   * trainOnCompletionsOnly unset both follow that file's own format's default.
   *
   * @throws Lora4jException when the data has no token that counts in the loss, or at a bad line
   *     (unless skipInvalidLines)
   */
  public static LossSum evaluate(MistralModel model, Dataset data, TrainingConfig cfg) {
    DataConfig dc = dataConfig(model, data, cfg, false, false);
    return evaluate(
        model, JsonlDataset.open(data.file(), model.textEncoder(), model.chatEncoder(), dc));
  }

  /**
   * cfg's trainOnCompletionsOnly, or where it is null TRL's default for the data's format (given,
   * or detected from the file): on for prompt / completion and Alpaca lines (SFTTrainer's
   * completion_only_loss), off for chat (assistant_only_loss false), text and pre-tokenized rows.
   */
  static boolean completionsOnly(MistralModel model, Dataset data, TrainingConfig cfg) {
    DataFormat f = data.format() != null ? data.format() : cfg.dataFormat();
    if (f == null && cfg.trainOnCompletionsOnly() == null) {
      try {
        f =
            JsonlDataset.open(
                    data.file(),
                    model.textEncoder(),
                    model.chatEncoder(),
                    DataConfig.builder().build())
                .formatOrNull();
      } catch (dev.lora4j.data.DataException missing) {
        // a missing file: the run says so where it opens the data
      }
    }
    return cfg.trainOnCompletionsOnlyFor(f);
  }

  /**
   * How fit reads a data file under cfg: shuffled (with group-by-length when asked) for training,
   * in file order otherwise; with cfg's validation fraction held out when split.
   */
  static DataConfig dataConfig(
      MistralModel model, Dataset data, TrainingConfig cfg, boolean shuffle, boolean split) {
    return DataConfig.builder()
        .format(data.format() != null ? data.format() : cfg.dataFormat())
        .completionsOnly(completionsOnly(model, data, cfg))
        .maxSeqLength(Math.min(cfg.maxSeqLength(), model.maxSeqLength()))
        .skipInvalid(cfg.skipInvalidLines())
        .batchSize(cfg.batchSize())
        .packing(cfg.packing())
        .groupByLength(shuffle && cfg.groupByLength())
        .shuffleBuffer(shuffle ? cfg.shuffleBuffer() : 0)
        .seed(cfg.seed())
        .validationFraction(split ? cfg.validationFraction() : 0)
        .prefetch(true)
        .build();
  }

  /**
   * Sum of token losses and their count over one pass of a dataset, in file order, with the model
   * as it is (with its adapter when one is attached).
   *
   * @throws Lora4jException when the data has no token that counts in the loss
   */
  public static LossSum evaluate(MistralModel model, JsonlDataset data) {
    return evaluate(model, data, null);
  }

  /**
   * {@link #evaluate(MistralModel, JsonlDataset)}, adding what the pass read (examples, drops,
   * truncations) to stats when not null.
   */
  public static LossSum evaluate(MistralModel model, JsonlDataset data, DataStats stats) {
    double sum = 0;
    long tokens = 0;
    try (BatchIterator it = data.batches(DataPosition.START, 1)) {
      while (it.hasNext()) {
        DataBatch b = it.next();
        if (b.labelTokens() == 0) continue;
        LossSum ls = model.evalLossSum(b.batch());
        sum += ls.sum();
        tokens += ls.tokens();
      }
      if (stats != null) stats.add(it.stats());
    }
    if (tokens == 0) {
      throw new Lora4jException(data.file() + ": the data has no token that counts in the loss");
    }
    return new LossSum(sum, tokens);
  }

  /**
   * The warning for an evaluation whose general-data loss rose by more than the allowed fraction.
   */
  static String forgettingWarning(TrainingListener.Evaluation e, Path file, double allowed) {
    return String.format(
        java.util.Locale.ROOT,
        "possible forgetting after step %d: the loss on the general data %s rose by %.1f%% over the"
            + " base model's (%.4f -> %.4f), more than the %.1f%% allowed (forgettingWarn)%s; lower"
            + " the learning rate or the number of steps, or mix general data into the training"
            + " data",
        e.step(),
        file.getFileName(),
        100 * e.generalChange(),
        e.baseGeneralLoss(),
        e.generalLoss(),
        100 * allowed,
        e.hasTask()
            ? String.format(java.util.Locale.ROOT, " (task loss gain %.4f)", e.taskGain())
            : "");
  }

  /** The padding share of the batches' positions above which the run says how to save it. */
  static final double PADDING_ADVICE = 0.2;

  /**
   * The advice for a run whose right-padded batches spent more than {@link #PADDING_ADVICE} of
   * their positions on padding (the engine computes every position of a batch), or null.
   */
  static String paddingAdvice(TrainingConfig cfg, long positions, long realPositions) {
    if (cfg.packing() || cfg.groupByLength() || positions == 0) return null;
    double pad = 1.0 - (double) realPositions / positions;
    if (pad <= PADDING_ADVICE) return null;
    return String.format(
        java.util.Locale.ROOT,
        "padding took %.1f%% of the batches' positions (each row is padded to the longest of its"
            + " batch, and every position costs compute): groupByLength(true) batches examples"
            + " of similar length, packing(true) puts several examples in a row",
        100 * pad);
  }

  private static final class Run {
    final MistralModel model;
    final Dataset data;
    final TrainingConfig cfg;

    /**
     * trainOnCompletionsOnly was left to the data's format: a validation file then follows its own
     * format's default, as SFTTrainer decides completion_only_loss for each dataset.
     */
    final boolean completionsOfEachFormat;

    /**
     * metrics.jsonl (the writer's) and the caller's, in that order (Listeners: which run where).
     */
    final Listeners listeners;

    final CheckpointStore store;
    final MetricsFile metrics;

    /** The output folder's lock, held for the run (null on a rank that writes nothing). */
    final java.nio.channels.FileChannel folderLock;

    void releaseFolder() {
      if (folderLock == null) return;
      try {
        folderLock.close();
      } catch (IOException ignored) {
        // closing the channel releases the lock in any case
      }
    }

    /** Rank 0 (or a run alone) writes the run's files; the other ranks write nothing. */
    final boolean writer;

    /**
     * The mean rule's all-reduce overlaps the backward
     * (DistributedConfig#overlapsGradientReduction).
     */
    final boolean overlapReduce;

    Run(MistralModel model, Dataset data, TrainingConfig given, List<TrainingListener> ls) {
      this.model = model;
      this.data = data;
      // trainOnCompletionsOnly left to the data's format is decided once, from the training data
      // (its validation data is read alike), and recorded so in checkpoints; resumed, as the
      // checkpoint recorded it (one of a run begun before the default followed the format recorded
      // false for every format)
      boolean unset = given.trainOnCompletionsOnly() == null;
      Boolean recorded = unset ? recordedCompletionsOnly(given) : null;
      TrainingConfig cfg =
          !unset
              ? given
              : given.toBuilder()
                  .trainOnCompletionsOnly(
                      recorded != null ? recorded : completionsOnly(model, data, given))
                  .build();
      this.cfg = cfg;
      this.completionsOfEachFormat = unset;
      List<Path> dataFiles = new ArrayList<>();
      dataFiles.add(data.file());
      dataFiles.add(cfg.validationFile());
      dataFiles.add(cfg.forgettingData());
      // The settings that need the run's workers are checked before anything is written.
      String workersFrom =
          cfg.distributed().worldSize()
              + " rank(s) x gradientAccumulation "
              + cfg.gradientAccumulation();
      cfg.aggregation().check(cfg.workers(), workersFrom);
      cfg.injectFaults().check(cfg.workers(), workersFrom);
      if ((cfg.aggregation().robust() || !cfg.injectFaults().isEmpty())
          && cfg.workers() > Lora4jLibrary.LORA4J_MAX_WORKERS) {
        throw new IllegalArgumentException(
            "aggregation "
                + cfg.aggregation()
                + " keeps one gradient per worker and takes at most "
                + Lora4jLibrary.LORA4J_MAX_WORKERS
                + " workers, but the run has n = "
                + cfg.workers()
                + " ("
                + workersFrom
                + "); lower gradientAccumulation");
      }
      this.writer = cfg.distributed().writesFiles();
      this.overlapReduce = cfg.distributed().overlapsGradientReduction(System.getenv());
      if (writer) {
        // checked first (the folder apart from the inputs, an earlier run resumed, replaced or
        // refused) without deleting anything; then the folder is taken for this run, and checked
        // again under the lock, where overwrite deletes: another run cannot slip in between
        java.util.function.Consumer<Boolean> prepare =
            delete ->
                RunFolder.prepare(
                    cfg.outputDir(),
                    model.directory(),
                    cfg.initAdapter(),
                    dataFiles,
                    cfg.resume(),
                    cfg.overwriteOutput(),
                    delete);
        prepare.accept(false);
        boolean existed = Files.exists(cfg.outputDir());
        try {
          Files.createDirectories(cfg.outputDir());
        } catch (IOException e) {
          throw new Lora4jException("cannot create output folder " + cfg.outputDir() + ": " + e, e);
        }
        if (!Files.isWritable(cfg.outputDir())) {
          throw new Lora4jException("output folder " + cfg.outputDir() + " is not writable");
        }
        this.folderLock = RunFolder.lock(cfg.outputDir());
        try {
          prepare.accept(true);
        } catch (RuntimeException e) {
          releaseFolder();
          if (!existed) RunFolder.removeIfOnlyLock(cfg.outputDir());
          throw e;
        }
      } else {
        this.folderLock = null;
      }
      this.store = new CheckpointStore(cfg.outputDir(), cfg.saveTotalLimit());
      this.metrics = new MetricsFile(cfg.outputDir().resolve("metrics.jsonl"));
      List<TrainingListener> all = new ArrayList<>();
      if (writer) all.add(metrics);
      all.addAll(ls);
      this.listeners = new Listeners(all, Listeners.background(model.device().isCuda()));
    }

    /**
     * The trainOnCompletionsOnly the checkpoint a resumed run continues recorded, or null (not
     * resuming, no checkpoint, or none recorded).
     */
    static Boolean recordedCompletionsOnly(TrainingConfig cfg) {
      if (!cfg.resume()) return null;
      // a fixed setting, the same in every checkpoint of the run: read from the newest one that
      // records it, without its checksums (the resume checks the one it takes)
      List<Path> all = new CheckpointStore(cfg.outputDir(), cfg.saveTotalLimit()).list();
      for (int i = all.size() - 1; i >= 0; i--) {
        try {
          RunSettings rs = CheckpointStore.readSettings(all.get(i));
          String v = rs == null ? null : rs.get(RunSettings.Setting.COMPLETIONS_ONLY);
          if ("true".equals(v) || "false".equals(v)) return Boolean.valueOf(v);
        } catch (Lora4jException damaged) {
          // the resume says what is wrong with it
        }
      }
      return null;
    }

    DataConfig dataConfig(boolean shuffle) {
      return LoraTrainer.dataConfig(model, data, cfg, shuffle, cfg.validationFile() == null);
    }

    /** The forgetting data: read whole in file order, every token counts, format detected. */
    DataConfig forgettingConfig() {
      return DataConfig.builder()
          .completionsOnly(false)
          .shuffleBuffer(0)
          .maxSeqLength(Math.min(cfg.maxSeqLength(), model.maxSeqLength()))
          .skipInvalid(cfg.skipInvalidLines())
          .batchSize(cfg.batchSize())
          .prefetch(true)
          .build();
    }

    /** The liveness channel of a group (null alone): lost ranks and the adapters' comparison. */
    GroupLink link;

    /** The step whose adapters the ranks last compared (-1: none yet). */
    long lastCompared = -1;

    /**
     * The run; in a group, a failure after a rank was lost names that rank (the collective it
     * broke, or the check between steps, only says that the group was aborted).
     */
    TrainingResult run() {
      Throwable failure = null;
      try {
        return runSteps();
      } catch (RuntimeException e) {
        failure = e;
        String why = link == null ? null : link.lost();
        if (why == null || String.valueOf(e.getMessage()).contains(why)) throw e;
        throw new Lora4jException(
            why + "; rank " + cfg.distributed().rank() + " stopped: " + e.getMessage(), e);
      } catch (Error e) {
        failure = e;
        throw e;
      } finally {
        releaseFolder();
        if (link != null) link.close();
        if (failure == null) {
          try {
            listeners.close();
          } finally {
            metrics.close();
          }
        } else {
          listeners.closeAfterFailure(failure);
          metrics.closeAfterFailure(failure);
        }
      }
    }

    /**
     * With the system property lora4j.dist.haltAfterLostSeconds (the command line sets 30): a rank
     * that has not ended that long after a rank was lost halts its JVM (status 1, the reason on
     * standard error). The abort frees a waiting collective; this bounds what it cannot free (a
     * rank stuck joining NCCL's communicator, or in a driver call). A library caller that does not
     * set the property gets the exception only.
     */
    static void haltAfterLoss(GroupLink link) {
      Long secs = Long.getLong("lora4j.dist.haltAfterLostSeconds");
      if (secs == null || secs <= 0) return;
      link.onLost(
          why -> {
            Thread t =
                new Thread(
                    () -> {
                      try {
                        Thread.sleep(secs * 1000);
                      } catch (InterruptedException e) {
                        return;
                      }
                      System.err.println(
                          "lora4j: error: "
                              + why
                              + "; this rank did not stop within "
                              + secs
                              + " s of it and halts");
                      System.err.flush();
                      Runtime.getRuntime().halt(1);
                    },
                    "lora4j-halt-after-loss");
            t.setDaemon(true);
            t.start();
          });
    }

    /**
     * In a group: every rank's adapter hashed (SHA-256 of its bytes) and compared by rank 0, which
     * fails the run naming the ranks that differ.
     */
    void compareAdapters(boolean last) {
      if (link == null || lastCompared == step) return;
      String line =
          link.compareAdapters(step, model.adapterSha256(), Rendezvous.defaultTimeoutMillis());
      lastCompared = step;
      if (writer) {
        if (last) LOG.info(line);
        else LOG.fine(line);
      }
    }

    TrainingResult runSteps() {
      long t0 = System.nanoTime();
      JsonlDataset all =
          JsonlDataset.open(
              data.file(), model.textEncoder(), model.chatEncoder(), dataConfig(true));
      JsonlDataset train =
          cfg.validationFraction() > 0 && cfg.validationFile() == null ? all.train() : all;
      JsonlDataset valid = null;
      if (cfg.validationFile() != null) {
        valid =
            JsonlDataset.open(
                cfg.validationFile(), model.textEncoder(), model.chatEncoder(), dataConfig(false));
        if (completionsOfEachFormat) valid = valid.withCompletionsOnlyOfItsFormat();
      } else if (cfg.validationFraction() > 0) {
        valid = all.validation();
      }
      JsonlDataset general =
          cfg.forgettingData() == null
              ? null
              : JsonlDataset.open(
                  cfg.forgettingData(),
                  model.textEncoder(),
                  model.chatEncoder(),
                  forgettingConfig());

      // Steps of the run: from the batches of one epoch (a counting pass over the data).
      DataStats scanStats = new DataStats();
      long batchesPerEpoch = train.countBatches(0, scanStats);
      DataReport trainReport = scanStats.report();
      long stepsPerEpoch = (batchesPerEpoch + cfg.workers() - 1) / cfg.workers();
      this.stepsPerEpoch = stepsPerEpoch;
      long totalSteps = cfg.maxSteps() > 0 ? cfg.maxSteps() : stepsPerEpoch * cfg.epochs();
      if (cfg.maxSteps() <= 0
          && cfg.epochs() > 1
          && train.config().packing()
          && train.config().shuffleBuffer() > 1) {
        // Packed rows depend on each epoch's shuffle: another epoch may pack into more (or
        // fewer) batches than the first (in file order every epoch packs alike). Plan from every
        // epoch's own count, so that the run neither stops before the last epoch's last batches
        // nor ends short of its schedule.
        for (int e = 1; e < cfg.epochs(); e++) {
          long b = train.countBatches(e);
          totalSteps += (b + cfg.workers() - 1) / cfg.workers() - stepsPerEpoch;
        }
      }
      int epochs = cfg.maxSteps() > 0 ? Integer.MAX_VALUE : cfg.epochs();
      List<String> warnings = new ArrayList<>(planWarnings(totalSteps, scanStats));
      if (cfg.initAdapter() != null) {
        double dropout = AdapterConfig.load(cfg.initAdapter()).loraDropout();
        if (dropout > 0) {
          warnings.add(
              "the starting adapter's adapter_config.json ("
                  + cfg.initAdapter()
                  + ") sets lora_dropout "
                  + dropout
                  + ": lora4j trains without LoRA dropout, and the adapter it writes records 0.0");
        }
      }

      // What the run is, to record in checkpoints and to check a resumed checkpoint against.
      RunSettings settings =
          cfg.saveSteps() > 0 || cfg.resume()
              ? RunSettings.of(
                  cfg, model.directory(), data.file(), totalSteps, model.nf4Projections())
              : null;
      Path resumeFrom = null;
      if (cfg.resume()) {
        resumeFrom = store.latestIntact();
        if (resumeFrom == null) {
          throw new Lora4jException(
              "resume(true) but no checkpoint in "
                  + cfg.outputDir()
                  + " is intact (each fails its"
                  + " manifest.json checksums): nothing to resume from");
        }
        warnings.addAll(checkResume(resumeFrom, settings));
      }

      // The base model's losses on the validation and the forgetting data, before any adapter.
      if (model.adapterConfig() != null) model.detachAdapter();
      DataReport validReport = null, generalReport = null;
      double baseLoss = Double.NaN, baseGeneral = Double.NaN;
      if (valid != null) {
        DataStats vs = new DataStats();
        baseLoss = evaluate(model, valid, vs).mean();
        validReport = vs.report();
      }
      if (general != null) {
        DataStats gs = new DataStats();
        baseGeneral = evaluate(model, general, gs).mean();
        generalReport = gs.report();
      }
      Evaluator evaluator = new Evaluator(valid, baseLoss, general, baseGeneral);
      this.evaluator = evaluator;

      TrainerState state;
      if (resumeFrom == null) {
        if (cfg.initAdapter() != null) model.attachAdapter(cfg.initAdapter());
        else model.attachNewAdapter(cfg.lora(), cfg.seed());
        state = TrainerState.fresh(totalSteps);
        if (writer) metrics.reset();
      } else {
        state = store.load(model, resumeFrom);
        resumedEnd = CheckpointStore.runEnd(resumeFrom);
        if (writer) {
          String damaged = null;
          if (resumedEnd != null) metrics.keepLines(resumedEnd.metricsLines());
          else damaged = metrics.truncateAfter(state.step());
          if (damaged != null) warnings.add(damaged);
          long dropped = RunFolder.keepRejected(cfg.outputDir(), state.rejectedBatches());
          if (dropped > 0)
            LOG.fine(dropped + " line(s) of rejected.jsonl after the checkpoint dropped: replayed");
        }
        LOG.fine("resuming from step " + state.step() + " at " + state.position());
        if (resumedEnd != null || state.step() >= totalSteps) {
          warnings.add(
              "the checkpoint "
                  + resumeFrom.getFileName()
                  + (state.step() >= totalSteps
                      ? " is at the run's last step (" + state.step() + " of " + totalSteps + ")"
                      : " records the run's end at step " + state.step() + " of " + totalSteps)
                  + ": nothing is left to train; its adapter is written again"
                  + (resumedEnd != null
                      ? " (its final evaluation is the one recorded)"
                      : " (and evaluated, with validation or forgetting data)")
                  + ". To train further, start a new run from it (initAdapter)");
        }
      }
      if (!cfg.distributed().isSingle()) {
        // Rank 0 makes the collective group's id and hands it to the others; every rank checks
        // that the others run the same settings (the digest) before the group forms.
        // The rendezvous' connections stay open as the liveness channel: a lost rank (killed,
        // stopped, cut off) aborts the collectives on every other rank instead of a hang.
        DistributedConfig d = cfg.distributed();
        link =
            Rendezvous.meet(
                d,
                MistralModel::newGroupId,
                Rendezvous.digest(groupSettings()),
                Rendezvous.defaultTimeoutMillis(),
                GroupLink.defaultIntervalMillis(),
                GroupLink.defaultSilenceMillis());
        link.onLost(model::abortGroup);
        haltAfterLoss(link);
        model.joinGroup(link.id(), d.worldSize(), d.rank());
        LOG.fine("rank " + d.rank() + " of " + d.worldSize() + " joined the group");
      }
      PoisonGuard guard =
          new PoisonGuard(cfg.guard(), state.guardHistory(), state.guardRejections());
      long trainable = model.trainableParameters();
      TrainingListener.TrainingPlan plan =
          new TrainingListener.TrainingPlan(
              totalSteps,
              state.step(),
              scanStats.examples(),
              model.device().toString(),
              trainable,
              trainReport,
              validReport,
              generalReport,
              List.copyOf(warnings));
      listeners.each(l -> l.onTrainBegin(plan));

      List<TrainingListener.Evaluation> evals = new ArrayList<>(state.evaluations());
      this.evals = evals;
      // a resumed run that early stopping had ended stays ended (its last evaluation decided it;
      // a checkpoint that records the run's end is final whatever the patience is now)
      stoppedEarly = earlyStop().stop() || (resumedEnd != null && state.step() < totalSteps);
      this.guard = guard;
      this.totalSteps = totalSteps;
      this.settings = settings;
      this.baseLoss = baseLoss;
      this.valid = valid;
      this.t0 = t0;
      this.examplesPerEpoch = scanStats.examples();
      step = state.step();
      skipped = state.skippedSteps();
      rejected = state.rejectedBatches();
      DataPosition pos = state.position();
      this.pos = pos; // (a resumed run's retries may come before its first step read)
      long positions = 0, realPositions = 0; // of the batches read, for the padding advice
      StepTimes times = new StepTimes();
      final int perStep = cfg.workers();
      // Rejected steps waiting for their retry (read again from their position after a resume).
      List<Retry> pending = new ArrayList<>();
      for (TrainerState.PendingRetry r : state.pendingRetries()) {
        List<DataBatch> micro = new ArrayList<>();
        try (BatchIterator again = train.batches(r.from(), epochs)) {
          while (micro.size() < r.microBatches() && again.hasNext()) micro.add(again.next());
        }
        pending.add(new Retry(r, micro));
      }
      try (BatchIterator it = train.batches(pos, epochs)) {
        int retryEpoch = pos.epoch();
        // A checkpoint written at an epoch's last step, or inside the retry pass that follows it,
        // holds retries from an epoch before its position (or from the last epoch, whose data is
        // read to its end): the uninterrupted run retries them next, before reading on.
        final int resumedAt = pos.epoch();
        if (!pending.isEmpty()
            && (!it.hasNext()
                || pending.stream().anyMatch(r -> r.info().from().epoch() < resumedAt))) {
          times.begin();
          retryPass(pending, times);
          times.mark(StepTimes.Phase.LISTENERS);
          times.end();
        }
        while (step < totalSteps && !stoppedEarly && it.hasNext()) {
          if (link != null) link.checkAlive();
          long ts = System.nanoTime();
          times.begin();
          List<DataBatch> micro = new ArrayList<>(perStep);
          while (micro.size() < perStep && it.hasNext()) {
            DataBatch db = it.next();
            micro.add(db);
            // An epoch's last batch ends its step, short of micro-batches if need be (as Hugging
            // Face's Trainer steps at each epoch's end): a step never mixes two epochs, and an
            // epoch is ceil(batches / workers) steps, the count the run planned.
            if (db.next().epoch() != db.epoch()) break;
          }
          for (DataBatch db : micro) {
            positions += (long) db.batch().rows() * db.batch().seq();
            realPositions += db.batch().realTokens();
          }
          DataPosition from = pos;
          pos = micro.get(micro.size() - 1).next();
          this.pos = pos;
          times.mark(StepTimes.Phase.DATA);
          Attempt a = attempt(micro, times);
          if (a != null) {
            if (a.reject() != null) {
              skipped++;
              TrainingListener.SkippedStep s =
                  new TrainingListener.SkippedStep(
                      step + 1, a.reject(), a.loss(), a.norm(), from + " .. " + pos);
              listeners.each(l -> l.onSkippedStep(s));
              pending.add(
                  new Retry(
                      new TrainerState.PendingRetry(from, micro.size(), step + 1, a.reject()),
                      micro));
              refused(a.reject());
            } else {
              applied(a, ts, pending, times);
            }
          }
          // The end of an epoch: each step rejected in it gets its one retry.
          if (!pending.isEmpty() && (pos.epoch() != retryEpoch || !it.hasNext())) {
            retryPass(pending, times);
          }
          if (pos.epoch() != retryEpoch) retryEpoch = pos.epoch();
          times.mark(StepTimes.Phase.LISTENERS);
          times.end();
        }
      }
      for (Retry r : pending) {
        reject(r, r.info().reason() + "; not retried: " + endReason(), null);
      }
      listeners.drain(); // the progress lines before the trainer's own
      compareAdapters(true);
      if (link != null) link.finish();
      if (times.steps() > 0) LOG.info(times.summary() + listeners.threadSummary(times.steps() + 1));
      if (reservedRows > 0) {
        model.reserveWorkerRows(0); // n gradients' worth of device memory back before evaluation
        reservedRows = 0;
      }
      // what the model's engine allocated at most (weights, adapter, optimizer, activations):
      // the figure to set against a card's memory; the driver's context comes on top
      long peak = model.peakMemory();
      LOG.info(
          String.format(
              Locale.ROOT,
              "peak memory of the engine: %d bytes (%.2f GiB)",
              peak,
              peak / (double) (1L << 30)));
      // The adapter is written before the final evaluation, so that a failure there (a
      // listener's exception, the device's memory) leaves the trained adapter in place.
      Path adapterDir = cfg.outputDir().resolve("adapter");
      if (writer) model.saveAdapter(adapterDir, true);
      // (a run that ended early at an evaluation step has its evaluation at this step already, as
      // has a finished run resumed: its last checkpoint records the run's end, below)
      boolean evaluatedHere = !evals.isEmpty() && evals.get(evals.size() - 1).step() == step;
      if (evaluator.active() && !evaluatedHere) {
        evaluator.lastWarning = null;
        evals.add(evaluator.evaluate(step));
        if (evaluator.lastWarning != null) warnings.add(evaluator.lastWarning);
      }
      // A checkpoint of this step was written before the run's end: it now records that end (the
      // final evaluation, the retries refused above, the batches read and refused after the step),
      // so that the run resumed from it does none of them again (metrics.jsonl and rejected.jsonl
      // hold their lines once). metrics.jsonl first holds every line the record covers.
      if (writer && lastCheckpoint != null && lastCheckpointStep == step) {
        listeners.drain();
        try {
          store.recordRunEnd(
              lastCheckpoint,
              new TrainerState(
                  step,
                  totalSteps,
                  this.pos,
                  skipped,
                  guard.history(),
                  guard.consecutiveRejections(),
                  evals,
                  List.of(),
                  rejected),
              settings,
              metrics.lineCount());
        } catch (Lora4jException e) {
          warnings.add(
              e.getMessage()
                  + ": resumed from "
                  + lastCheckpoint.getFileName()
                  + ", the run would evaluate its last step again");
        }
      }
      if (writer) {
        listeners.drain(); // every line of metrics.jsonl is in the plot
        try {
          LossPlot.write(metrics.path(), cfg.outputDir().resolve("loss.png"));
        } catch (LinkageError e) {
          // A minimal Java runtime (jlink without java.desktop) has no image support.
          LOG.warning("loss.png not written: this Java runtime lacks the java.desktop module");
        }
      }
      int endWarnings = warnings.size();
      long refusedThisRun = skipped - state.skippedSteps(); // every skip is a refusal
      if (stepsThisRun == 0 && step < totalSteps && resumedEnd == null && !stoppedEarly) {
        warnings.add(
            refusedThisRun == 0
                ? "no step ran: the data produced no batch with label tokens"
                : "no step was applied: the "
                    + refusedThisRun
                    + " tried were refused (the last because: "
                    + lastRefusal
                    + ")");
      }
      String padding = paddingAdvice(cfg, positions, realPositions);
      if (padding != null) warnings.add(padding);
      // the warnings of the run's end reach the listeners (metrics.jsonl, the progress lines) as
      // those of its steps do
      for (String w : warnings.subList(endWarnings, warnings.size())) {
        listeners.each(l -> l.onWarning(step, w));
      }
      TrainingResult result =
          new TrainingResult(
              adapterDir,
              step,
              skipped,
              firstLoss,
              lastLoss,
              List.copyOf(evals),
              (System.nanoTime() - t0) / 1e9,
              trainReport.truncated(),
              trainReport.dropped(),
              trainReport,
              validReport,
              generalReport,
              List.copyOf(warnings),
              rejected);
      listeners.each(l -> l.onTrainEnd(result));
      listeners.drain(); // the run's last line before the caller's
      return result;
    }

    // ---- the state of the step loop, shared with its helpers ----------------------------------
    /** Steps refused since the last applied one; the last refusal's reason. */
    long refusedInARow, stepsPerEpoch;

    String lastRefusal;

    /**
     * A step refused (the guard, a non-finite gradient, the aggregation rule). A run bounded by
     * steps (maxSteps: no last epoch) whose every batch of an epoch was refused, and refused again
     * on its retry, cannot train: it stops with an error instead of reading the data again without
     * end. What was refused is in rejected.jsonl; the last checkpoint is intact. A run bounded by
     * epochs ends after its last one, with a warning when no step was applied.
     */
    void refused(String reason) {
      refusedInARow++;
      lastRefusal = reason;
      if (cfg.maxSteps() > 0 && refusedInARow >= 2 * Math.max(1, stepsPerEpoch)) {
        throw new Lora4jException(
            "no optimizer step could be applied: the last "
                + refusedInARow
                + " attempts in a row were refused, twice the "
                + stepsPerEpoch
                + " step(s) of an epoch (each batch, then its retry); the last because: "
                + reason
                + (writer
                    ? "; the refused batches are in " + cfg.outputDir().resolve(RunFolder.REJECTED)
                    : ""));
      }
    }

    List<TrainingListener.Evaluation> evals;

    /** Early stopping has ended the run (or the resumed checkpoint recorded its end). */
    boolean stoppedEarly;

    PoisonGuard guard;
    long totalSteps, step, skipped, rejected, examplesPerEpoch, t0;
    RunSettings settings;
    Double baseLoss;
    JsonlDataset valid;
    Evaluator evaluator;
    DataPosition pos;

    /**
     * Steps applied by this call (not those of a checkpoint it resumed); their first and last loss.
     */
    long stepsThisRun;

    double firstLoss = Double.NaN, lastLoss = Double.NaN;

    /** The checkpoint this run wrote last, and its step. */
    Path lastCheckpoint;

    /** The run's end recorded in the checkpoint this run resumed, or null. */
    CheckpointStore.RunEnd resumedEnd;

    long lastCheckpointStep = -1;

    /** Worker rows reserved in the engine; the host copy used only to inject faults. */
    int reservedRows;

    FloatBuffer faultRows;

    /** A step tried: its loss and gradient norm, and why it was not applied (null: applied). */
    record Attempt(
        double loss,
        double norm,
        long labelTokens,
        long realTokens,
        String reject,
        StepResult result) {}

    /** What every rank of a group must agree on (compared at the rendezvous). */
    String groupSettings() {
      LoraConfig l = cfg.lora();
      return String.join(
          "|",
          "world=" + cfg.distributed().worldSize(),
          "data=" + data.file().getFileName(),
          "model=" + model.config(),
          "batch=" + cfg.batchSize(),
          "accum=" + cfg.gradientAccumulation(),
          "lr=" + cfg.learningRate(),
          "schedule=" + cfg.schedule(),
          "steps=" + cfg.maxSteps(),
          "epochs=" + cfg.epochs(),
          "seed=" + cfg.seed(),
          "maxlen=" + cfg.maxSeqLength(),
          "packing=" + cfg.packing(),
          "groupbylength=" + cfg.groupByLength(),
          "completions=" + cfg.trainOnCompletionsOnly(),
          "shuffle=" + cfg.shuffleBuffer(),
          "clip=" + cfg.maxGradNorm(),
          "wd=" + cfg.weightDecay(),
          "lora="
              + l.rank()
              + "/"
              + l.alpha()
              + "/"
              + new java.util.TreeSet<>(l.targets())
              + "/"
              + l.rslora(),
          "adapter=" + cfg.initAdapter(),
          "aggregation=" + cfg.aggregation(),
          "faults=" + cfg.injectFaults(),
          "resume=" + cfg.resume(),
          "guard=" + cfg.guard());
    }

    /** A rejected step waiting for its retry, with its micro-batches. */
    record Retry(TrainerState.PendingRetry info, List<DataBatch> micro) {}

    /**
     * One optimizer step on the step's micro-batches (this rank takes those whose index modulo the
     * world size is its rank): the gradients (accumulated, or per worker and aggregated), the
     * guard, AdamW. Null when the batches have no label token.
     */
    Attempt attempt(List<DataBatch> micro, StepTimes times) {
      long labelTokens = 0, realTokens = 0;
      for (DataBatch b : micro) {
        labelTokens += b.labelTokens();
        realTokens += b.batch().realTokens();
      }
      if (labelTokens == 0) return null;
      DistributedConfig d = cfg.distributed();
      boolean perWorker = cfg.aggregation().robust() || !cfg.injectFaults().isEmpty();
      double sum;
      String reject = null;
      if (!perWorker) {
        model.zeroGrad();
        sum = 0;
        // The rank's last pass sums the gradients over the group during its backward, overlapped
        // with it. Only when every rank has a pass this step: a rank without one could not issue
        // the same bucket reductions (every rank knows micro.size()).
        boolean overlap = overlapReduce && micro.size() >= d.worldSize();
        for (int i = d.rank(); i < micro.size(); i += d.worldSize()) {
          if (overlap && i + d.worldSize() >= micro.size()) model.reduceGradientsInBackward();
          sum += model.forwardBackward(micro.get(i).batch(), 1.0 / labelTokens).sum();
        }
        if (!d.isSingle()) {
          double[] v = {sum};
          model.allReduceSums(v);
          sum = v[0];
          model.allReduceGradients(); // after an armed pass: waits for its reductions
        }
      } else {
        int n = micro.size();
        if (n < cfg.workers()) {
          try {
            cfg.aggregation().check(n, "the epoch's last step has " + n + " micro-batches");
          } catch (IllegalArgumentException e) {
            reject = e.getMessage();
          }
        }
        sum = Double.NaN;
        if (reject == null) {
          sum = workerGradients(micro);
          try {
            model.aggregateWorkerRows(cfg.aggregation(), n, workerWeights(micro));
          } catch (NativeException e) {
            if (!e.isTooManyFaultyWorkers()) throw e;
            reject = e.getMessage();
          }
        }
      }
      double loss = sum / labelTokens;
      times.mark(StepTimes.Phase.FORWARD_BACKWARD);
      double lr = cfg.learningRate() * cfg.schedule().factor(step, totalSteps);
      double norm = reject != null ? Double.NaN : model.gradNorm();
      if (reject == null) reject = guard.check(loss, norm);
      times.mark(StepTimes.Phase.GRAD_NORM);
      if (reject != null) {
        model.zeroGrad();
        return new Attempt(loss, norm, labelTokens, realTokens, reject, null);
      }
      StepResult r = model.optimizerStep(cfg.adamw(lr));
      times.mark(StepTimes.Phase.OPTIMIZER);
      if (!r.applied())
        return new Attempt(loss, r.gradNorm(), labelTokens, realTokens, "gradient not finite", r);
      guard.accept(loss, norm);
      return new Attempt(loss, norm, labelTokens, realTokens, null, r);
    }

    /** The workers' weights for the mean: their label tokens. */
    static float[] workerWeights(List<DataBatch> micro) {
      float[] weights = new float[micro.size()];
      for (int i = 0; i < weights.length; i++) weights[i] = micro.get(i).labelTokens();
      return weights;
    }

    /**
     * Each worker's gradient (its micro-batch's mean-loss gradient) gathered from every rank into
     * the engine's worker rows (device memory on CUDA, device to device) and the injected faults;
     * the caller then applies the aggregation rule where the rows are, whose result replaces the
     * accumulated gradients. Faults that corrupt gradients are a testing feature and go through
     * host memory. Returns the step's loss sum over all ranks.
     */
    double workerGradients(List<DataBatch> micro) {
      DistributedConfig d = cfg.distributed();
      int world = d.worldSize(), n = micro.size();
      int rounds = (n + world - 1) / world;
      int rows = rounds * world;
      if (reservedRows < rows) {
        model.reserveWorkerRows(rows);
        reservedRows = rows;
      }
      double sum = 0;
      for (int m = 0; m < rounds; m++) {
        int i = m * world + d.rank();
        model.zeroGrad();
        if (i < n) {
          DataBatch b = micro.get(i);
          Batch batch =
              cfg.injectFaults().batch(b.batch(), i, step, cfg.seed(), model.config().vocabSize());
          if (b.labelTokens() > 0) sum += model.forwardBackward(batch, 1.0 / b.labelTokens()).sum();
        }
        model.gatherWorkerRows(m * world);
      }
      if (!d.isSingle()) {
        double[] v = {sum};
        model.allReduceSums(v);
        sum = v[0];
      }
      if (cfg.injectFaults().corruptsGradients()) {
        long count = model.gradientCount();
        if (faultRows == null || faultRows.capacity() < n * count) {
          faultRows =
              ByteBuffer.allocateDirect(Math.toIntExact(n * count * Float.BYTES))
                  .order(ByteOrder.nativeOrder())
                  .asFloatBuffer();
        }
        model.readWorkerRows(0, n, faultRows);
        cfg.injectFaults().corrupt(faultRows, n, count, step, cfg.seed());
        model.writeWorkerRows(0, n, faultRows);
      }
      return sum;
    }

    /** Early stopping's state after the run's evaluations so far. */
    EarlyStopping.State earlyStop() {
      return EarlyStopping.after(evals, cfg.earlyStoppingPatience(), cfg.earlyStoppingThreshold());
    }

    /** Why a pending retry is not tried: the run's end. */
    String endReason() {
      return stoppedEarly
          ? "early stopping had ended the run"
          : "the run had reached its last step";
    }

    /**
     * Each pending retry once, in the order its steps were refused: applied, refused again (to
     * rejected.jsonl), or, once the run has reached its last step, given up (to rejected.jsonl).
     */
    void retryPass(List<Retry> pending, StepTimes times) {
      for (Retry r : List.copyOf(pending)) {
        pending.remove(r);
        if (step >= totalSteps || stoppedEarly) {
          reject(r, r.info().reason() + "; not retried: " + endReason(), null);
          continue;
        }
        long tr = System.nanoTime();
        times.begin();
        Attempt again = attempt(r.micro(), times);
        if (again == null) continue;
        if (again.reject() != null) {
          skipped++;
          // a skipped attempt like the first: reported (metrics.jsonl's skipped lines count what
          // TrainingResult.skippedSteps counts)
          String where =
              r.info().from()
                  + " .. "
                  + r.micro().get(r.micro().size() - 1).next()
                  + " (its retry)";
          TrainingListener.SkippedStep s =
              new TrainingListener.SkippedStep(
                  step + 1, again.reject(), again.loss(), again.norm(), where);
          listeners.each(l -> l.onSkippedStep(s));
          reject(r, r.info().reason() + "; rejected again on its retry: " + again.reject(), again);
          refused(again.reject());
        } else {
          applied(again, tr, pending, times);
        }
      }
    }

    /** After an applied step: metrics, evaluation, checkpoint. */
    void applied(Attempt a, long ts, List<Retry> pending, StepTimes times) {
      stepsThisRun++;
      if (Double.isNaN(firstLoss)) firstLoss = a.loss();
      lastLoss = a.loss();
      step++;
      refusedInARow = 0;
      double secs = (System.nanoTime() - ts) / 1e9;
      double epochF =
          pos.epoch() + (examplesPerEpoch == 0 ? 0 : (double) pos.examples() / examplesPerEpoch);
      long tm = System.nanoTime();
      TrainingListener.StepMetrics m =
          new TrainingListener.StepMetrics(
              step,
              epochF,
              a.loss(),
              a.result().gradNorm(),
              cfg.learningRate() * cfg.schedule().factor(step - 1, totalSteps),
              a.labelTokens(),
              a.realTokens() / secs,
              (System.nanoTime() - t0) / 1e9,
              model.memoryInUse());
      long tl = System.nanoTime();
      times.part("step metrics", tl - tm);
      for (int i = 0; i < listeners.size(); i++) {
        listeners.deliver(i, l -> l.onStep(m));
        long now = System.nanoTime();
        times.part(listeners.name(i), now - tl);
        tl = now;
      }
      times.mark(StepTimes.Phase.LISTENERS);
      boolean last = step == totalSteps;
      if (evaluator.active() && cfg.evalSteps() > 0 && step % cfg.evalSteps() == 0 && !last) {
        evals.add(evaluator.evaluate(step));
        times.mark(StepTimes.Phase.EVALUATION);
        EarlyStopping.State es = earlyStop();
        if (es.stop()) {
          stoppedEarly = true;
          LOG.info(es.stopMessage(step, cfg.earlyStoppingThreshold()));
        }
      }
      boolean save = cfg.saveSteps() > 0 && step % cfg.saveSteps() == 0;
      if (save) compareAdapters(false);
      if (save && writer) {
        TrainerState st =
            new TrainerState(
                step,
                totalSteps,
                pos,
                skipped,
                guard.history(),
                guard.consecutiveRejections(),
                evals,
                pending.stream().map(Retry::info).toList(),
                rejected);
        // metrics.jsonl holds every line of the steps the checkpoint covers before it appears
        listeners.drain();
        Path dir = store.save(model, st, settings);
        lastCheckpoint = dir;
        lastCheckpointStep = step;
        long at = step; // the field moves on before a queued listener reads it
        listeners.each(l -> l.onCheckpoint(dir, at));
      }
      if (save) times.mark(StepTimes.Phase.CHECKPOINTS);
    }

    /** A step rejected twice (or never retried): one line per micro-batch in rejected.jsonl. */
    void reject(Retry r, String reason, Attempt again) {
      DataPosition start = r.info().from();
      for (DataBatch b : r.micro()) {
        rejected++;
        if (writer) {
          ObjectNode o = JSON.createObjectNode();
          o.put("step", r.info().step());
          o.putObject("from").put("epoch", start.epoch()).put("examples", start.examples());
          o.putObject("to").put("epoch", b.next().epoch()).put("examples", b.next().examples());
          o.put("examples", b.examples())
              .put("label_tokens", b.labelTokens())
              .put("reason", reason);
          if (again != null && Double.isFinite(again.loss())) o.put("retry_loss", again.loss());
          if (again != null && Double.isFinite(again.norm()))
            o.put("retry_grad_norm", again.norm());
          try {
            Files.writeString(
                cfg.outputDir().resolve(RunFolder.REJECTED),
                JSON.writeValueAsString(o) + "\n",
                StandardOpenOption.CREATE,
                StandardOpenOption.APPEND);
          } catch (IOException e) {
            throw new Lora4jException(
                "cannot write " + cfg.outputDir().resolve(RunFolder.REJECTED) + ": " + e, e);
          }
        }
        start = b.next();
      }
      listeners.drain(); // the progress lines before the trainer's own
      LOG.warning(
          r.micro().size()
              + " batch(es) from data position "
              + r.info().from()
              + " rejected twice, not trained on ("
              + reason
              + "); written to rejected.jsonl");
    }

    /** Warnings about a run whose length makes its settings ineffective. */
    List<String> planWarnings(long totalSteps, DataStats scan) {
      long examples = scan.examples(), truncated = scan.truncated();
      List<String> w = new ArrayList<>();
      String lost = lengthLoss(scan, Math.min(cfg.maxSeqLength(), model.maxSeqLength()));
      if (lost != null) w.add(lost);
      if (truncated > 0 && cfg.maxSeqLength() > model.maxSeqLength()) {
        w.add(
            truncated
                + " example(s) cut to the engine's length: maxSeqLength "
                + cfg.maxSeqLength()
                + " is longer than the "
                + model.maxSeqLength()
                + " positions the model was loaded with; load the model with"
                + " LoadOptions.withMaxSeqLength("
                + cfg.maxSeqLength()
                + ") (--max-positions) to train on the whole rows");
      }
      long merged = scan.promptBoundaries();
      if (merged > 0) {
        String first =
            scan.noted().stream()
                .filter(n -> n.issue() == DataStats.Issue.PROMPT_BOUNDARY)
                .map(DataStats.Noted::where)
                .findFirst()
                .orElse("?");
        w.add(
            merged
                + " training example(s) (the first at "
                + first
                + ") have a prompt whose tokens alone are not the start of prompt + completion's"
                + " (a prompt ending in a space merges it with the completion's first word), so"
                + " masking the prompt's length masks the completion's first token(s) too, as TRL"
                + " does where it warns of a mismatch: end prompts without the space and start"
                + " completions with it");
      }
      if (cfg.trainOnCompletionsOnly()
          && examples > 0
          && scan.labelTokens() >= scan.tokens() - examples) {
        w.add(
            "trainOnCompletionsOnly masked nothing: every token of the training data counts in the"
                + " loss (plain text, and input_ids without labels, have no prompt to mask;"
                + " prompt / completion, Alpaca and chat lines do)");
      }
      int warmup = cfg.schedule().warmup(totalSteps);
      if (warmup > 0 && warmup >= totalSteps) {
        w.add(
            "the warmup ("
                + warmup
                + " steps) is as long as the run ("
                + totalSteps
                + " steps): the learning rate never reaches learningRate "
                + cfg.learningRate()
                + "; shorten the warmup or train longer");
      }
      if (totalSteps < 10) {
        w.add(
            "the run has only "
                + totalSteps
                + " optimizer steps ("
                + examples
                + " examples per epoch, batchSize "
                + cfg.batchSize()
                + " x gradientAccumulation "
                + cfg.gradientAccumulation()
                + (cfg.maxSteps() > 0 ? ", maxSteps " + cfg.maxSteps() : ", epochs " + cfg.epochs())
                + "): too few to learn much; raise epochs or maxSteps");
      }
      return w;
    }

    /**
     * A warning when at least a tenth of the training lines lost tokens to the length limit (the
     * smaller of maxSeqLength and the model's positions) or taught nothing: dropped with no label
     * left, dropped as too long, or cut (three disjoint counts: a line cut to nothing that counts
     * is a drop only); null otherwise. The data report (trainData().describe()) counts every case;
     * this puts a large loss among the run's warnings, where a caller with its own listeners sees
     * it.
     */
    static String lengthLoss(DataStats scan, int maxSeqLength) {
      long noLabels = scan.skipped(DataStats.SkipReason.NO_LABELS);
      long tooLong = scan.skipped(DataStats.SkipReason.TOO_LONG);
      long cut = scan.truncated();
      long hit = noLabels + tooLong + cut;
      if (scan.lines() == 0 || hit * 10 < scan.lines()) return null;
      List<String> parts = new ArrayList<>();
      if (noLabels > 0) parts.add(noLabels + " dropped with nothing to learn");
      if (tooLong > 0) parts.add(tooLong + " dropped as too long");
      if (cut > 0) parts.add(cut + " cut");
      return String.format(
          Locale.ROOT,
          "%d of the training data's %d lines (%.0f%%) lost tokens to the length limit of %d"
              + " tokens or taught nothing: %s; raise maxSeqLength (and the model's positions) if"
              + " the rows are longer (trainData().describe() names the first of each)",
          hit,
          scan.lines(),
          100.0 * hit / scan.lines(),
          maxSeqLength,
          String.join(", ", parts));
    }

    /**
     * Refuses a checkpoint made with other fixed settings (naming each); returns notes on the
     * settings that may change and did.
     */
    List<String> checkResume(Path checkpoint, RunSettings now) {
      List<String> notes = new ArrayList<>();
      RunSettings recorded = CheckpointStore.readSettings(checkpoint);
      if (recorded == null) {
        TrainerState st = CheckpointStore.readState(checkpoint);
        recorded = RunSettings.fromOldCheckpoint(AdapterConfig.load(checkpoint), st.totalSteps());
        notes.add(
            checkpoint
                + " does not record the run's settings (written by an earlier lora4j): only its"
                + " LoRA rank, alpha, targets, rsLoRA and number of steps were checked");
      } else {
        List<RunSettings.Setting> missing = recorded.unrecorded(now);
        if (!missing.isEmpty()) {
          List<String> names = new ArrayList<>();
          for (RunSettings.Setting m : missing) names.add(m.label() + " (" + m.javaName() + ")");
          notes.add(
              checkpoint
                  + " does not record "
                  + String.join(", ", names)
                  + " (written by an earlier lora4j, or its trainer_state.json edited): not"
                  + " compared with this run's");
        }
      }
      List<RunSettings.Difference> diffs = recorded.differences(now);
      List<RunSettings.Difference> fixed = diffs.stream().filter(d -> d.setting().fixed()).toList();
      if (!fixed.isEmpty()) throw new RunSettings.MismatchException(checkpoint, fixed);
      for (RunSettings.Difference d : diffs) {
        notes.add("resuming with another " + d.describe(false));
      }
      return notes;
    }

    /**
     * Evaluations: the task's validation loss and the forgetting data's, each beside the base
     * model's.
     */
    final class Evaluator {
      final JsonlDataset valid, general;
      final double baseLoss, baseGeneral;
      String lastWarning;

      Evaluator(JsonlDataset valid, double baseLoss, JsonlDataset general, double baseGeneral) {
        this.valid = valid;
        this.baseLoss = baseLoss;
        this.general = general;
        this.baseGeneral = baseGeneral;
      }

      boolean active() {
        return valid != null || general != null;
      }

      TrainingListener.Evaluation evaluate(long step) {
        double loss = Double.NaN, generalLoss = Double.NaN;
        long tokens = 0, generalTokens = 0;
        if (valid != null) {
          LossSum ls = LoraTrainer.evaluate(model, valid);
          loss = ls.mean();
          tokens = ls.tokens();
        }
        if (general != null) {
          LossSum ls = LoraTrainer.evaluate(model, general);
          generalLoss = ls.mean();
          generalTokens = ls.tokens();
        }
        TrainingListener.Evaluation e =
            new TrainingListener.Evaluation(
                step, loss, baseLoss, tokens, generalLoss, baseGeneral, generalTokens);
        listeners.each(l -> l.onEvaluate(e));
        if (e.hasGeneral() && e.generalChange() > cfg.forgettingWarn()) {
          lastWarning = forgettingWarning(e, cfg.forgettingData(), cfg.forgettingWarn());
          String w = lastWarning;
          listeners.each(l -> l.onWarning(step, w));
        }
        return e;
      }
    }
  }
}
