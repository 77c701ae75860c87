package dev.lora4j;

import dev.lora4j.data.DataConfig;
import dev.lora4j.data.DataFormat;
import java.nio.file.Path;

/**
 * Everything {@link LoraTrainer#fit} needs besides the model and the data. Build one with {@link
 * #builder()}; every setting has a default that follows Hugging Face's Trainer/TRL where they have
 * one.
 *
 * @param outputDir where the adapter, metrics.jsonl, loss curve and checkpoints go
 * @param epochs passes over the training data (ignored when maxSteps > 0)
 * @param maxSteps optimizer steps to run; 0 or less: run the epochs
 * @param batchSize rows per micro-batch
 * @param gradientAccumulation micro-batches per optimizer step; the loss is normalized over all
 *     label tokens of the step
 * @param learningRate peak learning rate
 * @param schedule learning-rate schedule (default linear decay, no warmup, as Hugging Face)
 * @param weightDecay AdamW decoupled weight decay (default 0, as Hugging Face's Trainer)
 * @param beta1 AdamW beta1
 * @param beta2 AdamW beta2
 * @param adamEps AdamW epsilon
 * @param maxGradNorm global-norm clipping threshold; 0 or less: no clipping
 * @param lora the adapter to train (ignored when initAdapter is set)
 * @param initAdapter a PEFT adapter folder to start from instead of a fresh adapter, or null
 * @param maxSeqLength longest row; longer examples are truncated and counted
 * @param trainOnCompletionsOnly labels -100 on prompts (and on everything but assistant turns);
 *     null (the default) as TRL's SFTTrainer: on for prompt / completion and Alpaca data ({@code
 *     completion_only_loss}), off for chat ({@code assistant_only_loss} false), text and
 *     pre-tokenized rows
 * @param packing pack several examples into each row (attention never crosses them)
 * @param groupByLength without packing, put examples of similar length in the same batch (groups of
 *     50 batches sorted by length, longest first, as Hugging Face's {@code group_by_length}), so
 *     that less of each batch is padding; the batches of a step stay similar in length
 * @param dataFormat the data format, or null to detect it per file
 * @param skipInvalidLines skip and count malformed lines instead of failing
 * @param shuffleBuffer examples held for shuffling; 0 or 1: file order
 * @param seed seed of the adapter initialization and the shuffle
 * @param validationFile a separate validation JSONL file, or null
 * @param validationFraction fraction of the training file held out for validation, 0 for none; not
 *     with a validation file (both set is an error)
 * @param forgettingData general data unrelated to the task (any format the trainer reads, typically
 *     plain text), or null: its loss is evaluated with the base model once and with the adapter at
 *     every evaluation, to show forgetting beside the task's gain
 * @param forgettingWarn warn when the loss on forgettingData rises by more than this fraction of
 *     the base model's (default 0.05, 5%)
 * @param evalSteps evaluate every N optimizer steps (0: only at the end); needs validationFile,
 *     validationFraction or forgettingData
 * @param earlyStoppingPatience stop the run once this many evaluations in a row (every evalSteps)
 *     have not improved the validation loss, as Hugging Face's EarlyStoppingCallback does (0, the
 *     default: never); needs evalSteps and validationFile or validationFraction, and one rank
 * @param earlyStoppingThreshold how much an evaluation must lower the best validation loss so far
 *     to count as an improvement (default 0: any decrease)
 * @param loggingSteps log every N optimizer steps
 * @param saveSteps write a checkpoint every N optimizer steps (0: none)
 * @param saveTotalLimit checkpoints kept (the oldest are deleted)
 * @param resume continue from the latest checkpoint in outputDir; without a checkpoint there the
 *     run fails, and a checkpoint made with other settings that shape the run is refused (see
 *     {@link dev.lora4j.train.RunSettings})
 * @param guard the poisoned-batch guard
 * @param overwriteOutput delete the files of an earlier run in outputDir before starting (without
 *     it, and without resume, a folder holding an earlier run is refused); other files in the
 *     folder are never touched
 * @param aggregation how the step's virtual workers' gradients are combined (default mean; see
 *     {@link Aggregation}); a rule outside its tolerance for the run's workers is refused when the
 *     run starts
 * @param injectFaults faulty workers on purpose, for testing robust aggregation (default none)
 * @param distributed the group of processes this run is one rank of (default: a group of one)
 */
public record TrainingConfig(
    Path outputDir,
    int epochs,
    long maxSteps,
    int batchSize,
    int gradientAccumulation,
    double learningRate,
    Schedule schedule,
    double weightDecay,
    double beta1,
    double beta2,
    double adamEps,
    double maxGradNorm,
    LoraConfig lora,
    Path initAdapter,
    int maxSeqLength,
    Boolean trainOnCompletionsOnly,
    boolean packing,
    boolean groupByLength,
    DataFormat dataFormat,
    boolean skipInvalidLines,
    int shuffleBuffer,
    long seed,
    Path validationFile,
    double validationFraction,
    Path forgettingData,
    double forgettingWarn,
    long evalSteps,
    int earlyStoppingPatience,
    double earlyStoppingThreshold,
    long loggingSteps,
    long saveSteps,
    int saveTotalLimit,
    boolean resume,
    GuardConfig guard,
    boolean overwriteOutput,
    Aggregation aggregation,
    FaultInjection injectFaults,
    DistributedConfig distributed) {

  public TrainingConfig {
    if (outputDir == null) throw new IllegalArgumentException("outputDir is required");
    if (epochs < 1 && maxSteps <= 0) {
      throw new IllegalArgumentException("epochs must be >= 1 (or set maxSteps)");
    }
    if (batchSize < 1) throw new IllegalArgumentException("batchSize must be >= 1: " + batchSize);
    if (gradientAccumulation < 1) {
      throw new IllegalArgumentException(
          "gradientAccumulation must be >= 1: " + gradientAccumulation);
    }
    if (!(learningRate >= 0) || Double.isInfinite(learningRate)) {
      throw new IllegalArgumentException("learningRate must be >= 0: " + learningRate);
    }
    if (shuffleBuffer < 0)
      throw new IllegalArgumentException("shuffleBuffer must be >= 0: " + shuffleBuffer);
    DataConfig.checkGrouping(packing, groupByLength);
    new AdamWConfig(learningRate, beta1, beta2, adamEps, weightDecay, maxGradNorm); // checks them
    if (maxSeqLength < 2)
      throw new IllegalArgumentException("maxSeqLength must be >= 2: " + maxSeqLength);
    if (!(validationFraction >= 0 && validationFraction < 1)) {
      throw new IllegalArgumentException(
          "validationFraction must be in [0, 1): " + validationFraction);
    }
    if (validationFile != null && validationFraction > 0) {
      // one of them would be ignored: refuse rather than guess which the user meant
      throw new IllegalArgumentException(
          "validationFile and validationFraction are both set: hold out a fraction of the"
              + " training data or give a validation file, not both");
    }
    if (!(forgettingWarn >= 0) || Double.isInfinite(forgettingWarn)) {
      throw new IllegalArgumentException("forgettingWarn must be >= 0: " + forgettingWarn);
    }
    if (loggingSteps < 1)
      throw new IllegalArgumentException("loggingSteps must be >= 1: " + loggingSteps);
    if (saveTotalLimit < 1)
      throw new IllegalArgumentException("saveTotalLimit must be >= 1: " + saveTotalLimit);
    if (evalSteps < 0) throw new IllegalArgumentException("evalSteps must be >= 0: " + evalSteps);
    if (evalSteps > 0
        && validationFile == null
        && validationFraction == 0
        && forgettingData == null) {
      // as Hugging Face's Trainer refuses steps evaluation without an eval dataset: the setting
      // would do nothing
      throw new IllegalArgumentException(
          "evalSteps is "
              + evalSteps
              + " but there is nothing to evaluate on: give validationFile, validationFraction or"
              + " forgettingData, or leave evalSteps at 0");
    }
    if (saveSteps < 0) throw new IllegalArgumentException("saveSteps must be >= 0: " + saveSteps);
    if (earlyStoppingPatience < 0) {
      throw new IllegalArgumentException(
          "earlyStoppingPatience must be >= 0: " + earlyStoppingPatience);
    }
    if (!(earlyStoppingThreshold >= 0) || Double.isInfinite(earlyStoppingThreshold)) {
      throw new IllegalArgumentException(
          "earlyStoppingThreshold must be >= 0: " + earlyStoppingThreshold);
    }
    if (earlyStoppingPatience > 0 && evalSteps == 0) {
      throw new IllegalArgumentException(
          "earlyStoppingPatience is "
              + earlyStoppingPatience
              + " but evalSteps is 0: early stopping compares the evaluations made every"
              + " evalSteps steps");
    }
    if (earlyStoppingPatience > 0 && validationFile == null && validationFraction == 0) {
      // as Hugging Face's EarlyStoppingCallback needs an evaluation metric: the forgetting data's
      // loss is not the task's
      throw new IllegalArgumentException(
          "earlyStoppingPatience is "
              + earlyStoppingPatience
              + " but there is no validation data: give validationFile or validationFraction");
    }
    if (schedule == null) schedule = Schedule.linear();
    if (lora == null) lora = LoraConfig.builder().build();
    if (guard == null) guard = GuardConfig.defaults();
    if (aggregation == null) aggregation = Aggregation.mean();
    if (injectFaults == null) injectFaults = FaultInjection.none();
    if (distributed == null) distributed = DistributedConfig.single();
    if (earlyStoppingPatience > 0 && distributed.worldSize() > 1) {
      // each rank evaluates on its own: a rank stopping alone would leave the others waiting
      throw new IllegalArgumentException(
          "earlyStoppingPatience is not supported with more than one rank (world size "
              + distributed.worldSize()
              + ")");
    }
  }

  /**
   * Whether prompts are masked for data of the given format: {@link #trainOnCompletionsOnly()}
   * where set, else TRL's SFTTrainer's default for the format ({@link
   * DataFormat#completionsOnlyByDefault()}).
   */
  public boolean trainOnCompletionsOnlyFor(DataFormat format) {
    return trainOnCompletionsOnly != null
        ? trainOnCompletionsOnly
        : format != null && format.completionsOnlyByDefault();
  }

  /**
   * The virtual workers of one optimizer step: ranks x gradientAccumulation (each (rank,
   * micro-batch) pair is one).
   */
  public int workers() {
    return distributed.worldSize() * gradientAccumulation;
  }

  public static Builder builder() {
    return new Builder();
  }

  public Builder toBuilder() {
    Builder b = new Builder();
    b.outputDir = outputDir;
    b.epochs = epochs;
    b.maxSteps = maxSteps;
    b.batchSize = batchSize;
    b.gradientAccumulation = gradientAccumulation;
    b.learningRate = learningRate;
    b.schedule = schedule;
    b.weightDecay = weightDecay;
    b.beta1 = beta1;
    b.beta2 = beta2;
    b.adamEps = adamEps;
    b.maxGradNorm = maxGradNorm;
    b.lora = lora;
    b.initAdapter = initAdapter;
    b.maxSeqLength = maxSeqLength;
    b.trainOnCompletionsOnly = trainOnCompletionsOnly;
    b.packing = packing;
    b.groupByLength = groupByLength;
    b.dataFormat = dataFormat;
    b.skipInvalidLines = skipInvalidLines;
    b.shuffleBuffer = shuffleBuffer;
    b.seed = seed;
    b.validationFile = validationFile;
    b.validationFraction = validationFraction;
    b.forgettingData = forgettingData;
    b.forgettingWarn = forgettingWarn;
    b.evalSteps = evalSteps;
    b.earlyStoppingPatience = earlyStoppingPatience;
    b.earlyStoppingThreshold = earlyStoppingThreshold;
    b.loggingSteps = loggingSteps;
    b.saveSteps = saveSteps;
    b.saveTotalLimit = saveTotalLimit;
    b.resume = resume;
    b.guard = guard;
    b.overwriteOutput = overwriteOutput;
    b.aggregation = aggregation;
    b.injectFaults = injectFaults;
    b.distributed = distributed;
    return b;
  }

  /** The AdamW settings at learning rate lr. */
  public AdamWConfig adamw(double lr) {
    return new AdamWConfig(lr, beta1, beta2, adamEps, weightDecay, maxGradNorm);
  }

  /** Builder with defaults. */
  public static final class Builder {
    private Path outputDir;
    private int epochs = 1;
    private long maxSteps = 0;
    private int batchSize = 4;
    private int gradientAccumulation = 1;
    private double learningRate = 2e-4;
    private Schedule schedule = Schedule.linear();
    private double weightDecay = 0.0;
    private double beta1 = 0.9;
    private double beta2 = 0.999;
    private double adamEps = 1e-8;
    private double maxGradNorm = 1.0;
    private LoraConfig lora = LoraConfig.builder().build();
    private Path initAdapter;
    private int maxSeqLength = 2048;
    private Boolean trainOnCompletionsOnly;
    private boolean packing;
    private boolean groupByLength;
    private DataFormat dataFormat;
    private boolean skipInvalidLines;
    private int shuffleBuffer = 10_000;
    private long seed = 42;
    private Path validationFile;
    private double validationFraction;
    private Path forgettingData;
    private double forgettingWarn = 0.05;
    private long evalSteps;
    private int earlyStoppingPatience;
    private double earlyStoppingThreshold;
    private long loggingSteps = 10;
    private long saveSteps;
    private int saveTotalLimit = 2;
    private boolean resume;
    private GuardConfig guard = GuardConfig.defaults();
    private boolean overwriteOutput;
    private Aggregation aggregation = Aggregation.mean();
    private FaultInjection injectFaults = FaultInjection.none();
    private DistributedConfig distributed = DistributedConfig.single();

    public Builder outputDir(Path v) {
      outputDir = v;
      return this;
    }

    public Builder epochs(int v) {
      epochs = v;
      return this;
    }

    public Builder maxSteps(long v) {
      maxSteps = v;
      return this;
    }

    public Builder batchSize(int v) {
      batchSize = v;
      return this;
    }

    public Builder gradientAccumulation(int v) {
      gradientAccumulation = v;
      return this;
    }

    public Builder learningRate(double v) {
      learningRate = v;
      return this;
    }

    public Builder schedule(Schedule v) {
      schedule = v;
      return this;
    }

    public Builder weightDecay(double v) {
      weightDecay = v;
      return this;
    }

    public Builder betas(double b1, double b2) {
      beta1 = b1;
      beta2 = b2;
      return this;
    }

    public Builder adamEps(double v) {
      adamEps = v;
      return this;
    }

    public Builder maxGradNorm(double v) {
      maxGradNorm = v;
      return this;
    }

    public Builder lora(LoraConfig v) {
      lora = v;
      return this;
    }

    public Builder initAdapter(Path v) {
      initAdapter = v;
      return this;
    }

    public Builder maxSeqLength(int v) {
      maxSeqLength = v;
      return this;
    }

    public Builder trainOnCompletionsOnly(boolean v) {
      trainOnCompletionsOnly = v;
      return this;
    }

    /**
     * Sets trainOnCompletionsOnly, or with null leaves it to the data's format (see {@link
     * TrainingConfig#trainOnCompletionsOnly()}).
     */
    public Builder trainOnCompletionsOnly(Boolean v) {
      trainOnCompletionsOnly = v;
      return this;
    }

    public Builder packing(boolean v) {
      packing = v;
      return this;
    }

    public Builder groupByLength(boolean v) {
      groupByLength = v;
      return this;
    }

    public Builder dataFormat(DataFormat v) {
      dataFormat = v;
      return this;
    }

    public Builder skipInvalidLines(boolean v) {
      skipInvalidLines = v;
      return this;
    }

    public Builder shuffleBuffer(int v) {
      shuffleBuffer = v;
      return this;
    }

    public Builder seed(long v) {
      seed = v;
      return this;
    }

    public Builder validationFile(Path v) {
      validationFile = v;
      return this;
    }

    public Builder validationFraction(double v) {
      validationFraction = v;
      return this;
    }

    public Builder forgettingData(Path v) {
      forgettingData = v;
      return this;
    }

    public Builder forgettingWarn(double v) {
      forgettingWarn = v;
      return this;
    }

    public Builder evalSteps(long v) {
      evalSteps = v;
      return this;
    }

    public Builder earlyStoppingPatience(int v) {
      earlyStoppingPatience = v;
      return this;
    }

    public Builder earlyStoppingThreshold(double v) {
      earlyStoppingThreshold = v;
      return this;
    }

    public Builder loggingSteps(long v) {
      loggingSteps = v;
      return this;
    }

    public Builder saveSteps(long v) {
      saveSteps = v;
      return this;
    }

    public Builder saveTotalLimit(int v) {
      saveTotalLimit = v;
      return this;
    }

    public Builder resume(boolean v) {
      resume = v;
      return this;
    }

    public Builder guard(GuardConfig v) {
      guard = v;
      return this;
    }

    public Builder overwriteOutput(boolean v) {
      overwriteOutput = v;
      return this;
    }

    public Builder aggregation(Aggregation v) {
      aggregation = v;
      return this;
    }

    /**
     * {@code mean}, {@code median}, {@code trimmed-mean[:f]}, {@code krum[:f]}, {@code
     * centered-clip}; median, trimmed-mean and centered-clip mix first unless they end in {@code
     * :no-mixing} (see {@link Aggregation}).
     */
    public Builder aggregation(String v) {
      aggregation = Aggregation.parse(v);
      return this;
    }

    public Builder injectFaults(FaultInjection v) {
      injectFaults = v;
      return this;
    }

    /** {@code KIND[:ARG]@WORKER[,...]}, see {@link FaultInjection}. */
    public Builder injectFaults(String v) {
      injectFaults = FaultInjection.parse(v);
      return this;
    }

    public Builder distributed(DistributedConfig v) {
      distributed = v;
      return this;
    }

    public TrainingConfig build() {
      return new TrainingConfig(
          outputDir,
          epochs,
          maxSteps,
          batchSize,
          gradientAccumulation,
          learningRate,
          schedule,
          weightDecay,
          beta1,
          beta2,
          adamEps,
          maxGradNorm,
          lora,
          initAdapter,
          maxSeqLength,
          trainOnCompletionsOnly,
          packing,
          groupByLength,
          dataFormat,
          skipInvalidLines,
          shuffleBuffer,
          seed,
          validationFile,
          validationFraction,
          forgettingData,
          forgettingWarn,
          evalSteps,
          earlyStoppingPatience,
          earlyStoppingThreshold,
          loggingSteps,
          saveSteps,
          saveTotalLimit,
          resume,
          guard,
          overwriteOutput,
          aggregation,
          injectFaults,
          distributed);
    }
  }
}
