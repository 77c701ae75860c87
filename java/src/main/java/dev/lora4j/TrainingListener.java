package dev.lora4j;

import dev.lora4j.data.DataReport;
import java.nio.file.Path;
import java.util.List;

/**
 * Receives the events of a training run. Every method has an empty default; implement the ones you
 * need. Your listeners run on the training thread, between steps, in the order given; on a GPU run
 * the built-in ones (metrics.jsonl, {@link dev.lora4j.train.ProgressListener}) write on a thread of
 * their own, and every line they wrote for earlier events is written before one of yours is called.
 */
public interface TrainingListener {
  /** Before the first step: the plan of the run. */
  default void onTrainBegin(TrainingPlan plan) {}

  /** After every applied optimizer step. */
  default void onStep(StepMetrics metrics) {}

  /** A step that was not applied (non-finite, or rejected by the poisoned-batch guard). */
  default void onSkippedStep(SkippedStep skipped) {}

  /** After each evaluation on the validation data. */
  default void onEvaluate(Evaluation evaluation) {}

  /**
   * A warning raised during the run (the loss on the forgetting data rose by more than
   * forgettingWarn); the warnings known before the first step come in {@link TrainingPlan}.
   *
   * @param step the optimizer step after which it was raised
   * @param message what happened, in one line
   */
  default void onWarning(long step, String message) {}

  /** After a checkpoint folder was completely written. */
  default void onCheckpoint(Path checkpoint, long step) {}

  /** After the last step, with the result (the adapter is already written). */
  default void onTrainEnd(TrainingResult result) {}

  /**
   * The plan of a run.
   *
   * @param totalSteps optimizer steps the run will make
   * @param startStep the step it starts after (0, or the checkpoint's step when resuming)
   * @param trainExamples examples in one epoch of the training data
   * @param device where it runs
   * @param trainableParameters LoRA parameters trained
   * @param trainData what the counting pass over the training data read: examples, and the lines
   *     dropped or cut with the first few of each kind
   * @param validationData the same for the validation data, or null without validation
   * @param forgettingData the same for the forgetting data, or null without it
   * @param warnings settings that will not do what they seem to (a warmup longer than the run, a
   *     run of a few steps), changes on resume; empty when none
   */
  record TrainingPlan(
      long totalSteps,
      long startStep,
      long trainExamples,
      String device,
      long trainableParameters,
      DataReport trainData,
      DataReport validationData,
      DataReport forgettingData,
      List<String> warnings) {}

  /**
   * One applied optimizer step.
   *
   * @param step 1-based optimizer step
   * @param epoch fractional epoch reached
   * @param loss mean loss over the step's label tokens, before the update
   * @param gradNorm global gradient norm before clipping
   * @param learningRate learning rate used
   * @param tokens label tokens of the step
   * @param tokensPerSecond input tokens per second of this step (real tokens, padding excluded)
   * @param elapsedSeconds since the start of the run
   * @param memoryBytes engine memory in use (device memory on CUDA)
   */
  record StepMetrics(
      long step,
      double epoch,
      double loss,
      double gradNorm,
      double learningRate,
      long tokens,
      double tokensPerSecond,
      double elapsedSeconds,
      long memoryBytes) {}

  /**
   * A step that was not applied.
   *
   * @param step the optimizer step it would have been (the step count does not advance)
   * @param reason why
   * @param loss its loss
   * @param gradNorm its gradient norm
   * @param dataPosition where its batches came from in the data
   */
  record SkippedStep(long step, String reason, double loss, double gradNorm, String dataPosition) {}

  /**
   * Validation loss of the fine-tuned model and of the base model, and the loss of both on the
   * forgetting data (general text unrelated to the task): the task's gain beside what the model may
   * have lost elsewhere.
   *
   * @param step optimizer step after which it ran
   * @param loss mean validation loss with the adapter (NaN without validation data)
   * @param baseLoss mean validation loss of the base model without the adapter (NaN without)
   * @param tokens validation tokens counted
   * @param generalLoss mean loss on the forgetting data with the adapter (NaN without it)
   * @param baseGeneralLoss mean loss on the forgetting data of the base model (NaN without it)
   * @param generalTokens forgetting-data tokens counted
   */
  record Evaluation(
      long step,
      double loss,
      double baseLoss,
      long tokens,
      double generalLoss,
      double baseGeneralLoss,
      long generalTokens) {

    /** An evaluation on validation data only. */
    public Evaluation(long step, double loss, double baseLoss, long tokens) {
      this(step, loss, baseLoss, tokens, Double.NaN, Double.NaN, 0);
    }

    public double perplexity() {
      return Math.exp(loss);
    }

    public double basePerplexity() {
      return Math.exp(baseLoss);
    }

    /**
     * @return how much the adapter lowered the validation loss: baseLoss - loss (NaN without
     *     validation)
     */
    public double taskGain() {
      return baseLoss - loss;
    }

    /**
     * @return the relative change of the loss on the forgetting data, (generalLoss -
     *     baseGeneralLoss) / baseGeneralLoss: positive when the model got worse at general text
     *     (NaN without forgetting data)
     */
    public double generalChange() {
      return (generalLoss - baseGeneralLoss) / baseGeneralLoss;
    }

    /**
     * @return whether the run had forgetting data
     */
    public boolean hasGeneral() {
      return !Double.isNaN(generalLoss);
    }

    /**
     * @return whether the run had validation data
     */
    public boolean hasTask() {
      return !Double.isNaN(loss);
    }
  }
}
