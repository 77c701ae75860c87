package dev.lora4j.train;

import dev.lora4j.TrainingListener;
import java.util.List;
import java.util.Locale;

/**
 * Early stopping on the validation loss, as Hugging Face's {@code EarlyStoppingCallback} decides
 * it: an evaluation improves when its loss is below the lowest loss before it by more than the
 * threshold (the first evaluation always does), and the run stops once {@code patience} evaluations
 * in a row have not improved. Decided from the run's evaluations alone (a checkpoint records them),
 * so a resumed run stops where the uninterrupted one did.
 */
public final class EarlyStopping {
  private EarlyStopping() {}

  /**
   * Where the evaluations leave early stopping.
   *
   * @param stop whether the run stops now
   * @param bestStep the step of the best evaluation (0 before any)
   * @param bestLoss the best validation loss (NaN before any)
   * @param sinceBest evaluations since the last improvement
   */
  public record State(boolean stop, long bestStep, double bestLoss, int sinceBest) {
    /**
     * The log line of a run stopped by it, at step (the evaluations without improvement are
     * sinceBest: the patience, reached at that evaluation).
     */
    public String stopMessage(long step, double threshold) {
      return String.format(
          Locale.ROOT,
          "early stopping at step %d: %d evaluation(s) in a row did not lower the validation"
              + " loss%s (lowest %.4f, at step %d)",
          step,
          sinceBest,
          threshold > 0 ? " by more than " + threshold : "",
          bestLoss,
          bestStep);
    }
  }

  /**
   * The state after evals (in order; those without a validation loss are passed over).
   *
   * @param evals the run's evaluations so far
   * @param patience evaluations without improvement that stop the run (0: never stops)
   * @param threshold how much an improvement must lower the best loss by (>= 0)
   * @return the state
   */
  public static State after(
      List<TrainingListener.Evaluation> evals, int patience, double threshold) {
    long bestStep = 0;
    double best = Double.NaN;
    int since = 0;
    for (TrainingListener.Evaluation e : evals) {
      double loss = e.loss();
      if (Double.isNaN(loss)) continue;
      // as the Trainer compares each evaluation with the lowest loss before it (which any
      // decrease lowers, whether or not it counted as an improvement)
      if (Double.isNaN(best) || best - loss > threshold) since = 0;
      else since++;
      if (Double.isNaN(best) || loss < best) {
        best = loss;
        bestStep = e.step();
      }
    }
    return new State(patience > 0 && since >= patience, bestStep, best, since);
  }
}
