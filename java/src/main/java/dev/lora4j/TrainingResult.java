package dev.lora4j;

import java.nio.file.Path;
import java.util.List;

/**
 * What a training run produced.
 *
 * @param adapterDir the final PEFT adapter folder
 * @param steps optimizer steps applied in total
 * @param skippedSteps steps not applied (non-finite or rejected by the guard)
 * @param firstLoss loss of the first step of this run
 * @param finalLoss loss of the last step
 * @param evaluations every evaluation made, in order
 * @param seconds wall time of this run
 * @param truncatedExamples examples cut to the maximum length
 * @param skippedExamples examples skipped (invalid lines, nothing to learn)
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
    long skippedExamples) {

  /** The last evaluation, or null when none ran. */
  public TrainingListener.Evaluation finalEvaluation() {
    return evaluations.isEmpty() ? null : evaluations.get(evaluations.size() - 1);
  }
}
