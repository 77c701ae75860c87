package dev.lora4j.train;

import dev.lora4j.TrainingListener;
import dev.lora4j.data.DataPosition;
import java.util.List;

/**
 * Where a run stands after an optimizer step: what a checkpoint stores besides the adapter and
 * the optimizer moments, so that a resumed run continues exactly.
 *
 * @param step optimizer steps applied
 * @param totalSteps steps of the whole run (the schedule depends on it)
 * @param position the data position after the last batch used
 * @param skippedSteps steps not applied so far
 * @param guardHistory the poisoned-batch guard's recent {loss, gradNorm} pairs
 * @param guardRejections the guard's rejections in a row
 * @param evaluations evaluations so far
 */
public record TrainerState(
    long step,
    long totalSteps,
    DataPosition position,
    long skippedSteps,
    List<double[]> guardHistory,
    int guardRejections,
    List<TrainingListener.Evaluation> evaluations) {

  public static TrainerState fresh(long totalSteps) {
    return new TrainerState(0, totalSteps, DataPosition.START, 0, List.of(), 0, List.of());
  }
}
