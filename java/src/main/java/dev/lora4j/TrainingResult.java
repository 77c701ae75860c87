package dev.lora4j;

import dev.lora4j.data.DataReport;
import java.nio.file.Path;
import java.util.List;

/**
 * What a training run produced.
 *
 * @param adapterDir the final PEFT adapter folder
 * @param steps optimizer steps applied in total
 * @param skippedSteps steps not applied (non-finite or rejected by the guard)
 * @param firstLoss loss of the first step of this run (NaN when this run applied no step, as when
 *     it resumed a finished run)
 * @param finalLoss loss of the last step of this run (NaN likewise)
 * @param evaluations every evaluation made, in order
 * @param seconds wall time of this run
 * @param truncatedExamples examples of one epoch cut to the maximum length
 * @param skippedExamples lines of one epoch that gave no example (invalid, not UTF-8, too long,
 *     nothing to learn)
 * @param trainData what one pass over the training data read, with the first few dropped or cut
 *     examples of each kind (file, line, reason)
 * @param validationData the same for the validation data, or null without validation
 * @param forgettingData the same for the forgetting data, or null without it
 * @param warnings what the run warned about (also in {@link TrainingListener.TrainingPlan})
 * @param rejectedBatches batches refused twice (by the poisoned-batch guard, the aggregation rule
 *     or for a non-finite gradient: first refusal, then its retry at the end of the epoch), each
 *     written with its data position and reasons to outputDir/rejected.jsonl; a run bounded by
 *     steps whose every batch of an epoch is refused twice stops with an error
 */
public record TrainingResult(
    Path adapterDir,
    long steps,
    long skippedSteps,
    double firstLoss,
    double finalLoss,
    List<TrainingListener.Evaluation> evaluations,
    double seconds,
    long truncatedExamples,
    long skippedExamples,
    DataReport trainData,
    DataReport validationData,
    DataReport forgettingData,
    List<String> warnings,
    long rejectedBatches) {

  /** A result with no rejected batch. */
  public TrainingResult(
      Path adapterDir,
      long steps,
      long skippedSteps,
      double firstLoss,
      double finalLoss,
      List<TrainingListener.Evaluation> evaluations,
      double seconds,
      long truncatedExamples,
      long skippedExamples,
      DataReport trainData,
      DataReport validationData,
      DataReport forgettingData,
      List<String> warnings) {
    this(
        adapterDir,
        steps,
        skippedSteps,
        firstLoss,
        finalLoss,
        evaluations,
        seconds,
        truncatedExamples,
        skippedExamples,
        trainData,
        validationData,
        forgettingData,
        warnings,
        0);
  }

  /** "11.6884 -> 2.1348" (first and final loss), or "none (no step in this run)". */
  public String lossChange() {
    return Double.isNaN(firstLoss)
        ? "none (no step in this run)"
        : String.format(java.util.Locale.ROOT, "%.4f -> %.4f", firstLoss, finalLoss);
  }

  /** The last evaluation, or null when none ran. */
  public TrainingListener.Evaluation finalEvaluation() {
    return evaluations.isEmpty() ? null : evaluations.get(evaluations.size() - 1);
  }
}
