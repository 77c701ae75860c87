package dev.lora4j.train;

import dev.lora4j.TrainingListener;
import dev.lora4j.data.DataPosition;
import java.util.List;

/**
 * Where a run stands after an optimizer step: what a checkpoint stores besides the adapter and the
 * optimizer moments, so that a resumed run continues exactly.
 *
 * @param step optimizer steps applied
 * @param totalSteps steps of the whole run (the schedule depends on it)
 * @param position the data position after the last batch used
 * @param skippedSteps steps not applied so far
 * @param guardHistory the poisoned-batch guard's recent {loss, gradNorm} pairs
 * @param guardRejections the guard's rejections in a row
 * @param evaluations evaluations so far
 * @param pendingRetries steps the guard rejected once, waiting for their retry at the end of the
 *     epoch (their data is read again from the recorded position on resume)
 * @param rejectedBatches batches rejected twice so far (written to rejected.jsonl)
 */
public record TrainerState(
    long step,
    long totalSteps,
    DataPosition position,
    long skippedSteps,
    List<double[]> guardHistory,
    int guardRejections,
    List<TrainingListener.Evaluation> evaluations,
    List<PendingRetry> pendingRetries,
    long rejectedBatches) {

  /**
   * A rejected step waiting for its retry: its first micro-batch starts at from, it has
   * microBatches of them; step and reason are those of the first rejection.
   */
  public record PendingRetry(DataPosition from, int microBatches, long step, String reason) {}

  public TrainerState {
    pendingRetries = pendingRetries == null ? List.of() : List.copyOf(pendingRetries);
  }

  /** A state with no pending retry and no rejected batch. */
  public TrainerState(
      long step,
      long totalSteps,
      DataPosition position,
      long skippedSteps,
      List<double[]> guardHistory,
      int guardRejections,
      List<TrainingListener.Evaluation> evaluations) {
    this(
        step,
        totalSteps,
        position,
        skippedSteps,
        guardHistory,
        guardRejections,
        evaluations,
        List.of(),
        0);
  }

  public static TrainerState fresh(long totalSteps) {
    return new TrainerState(0, totalSteps, DataPosition.START, 0, List.of(), 0, List.of());
  }
}
