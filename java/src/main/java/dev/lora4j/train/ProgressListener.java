package dev.lora4j.train;

import dev.lora4j.TrainingListener;
import java.io.PrintStream;
import java.util.Locale;
import java.util.Objects;
import java.util.function.UnaryOperator;

/**
 * Shows progress: a bar redrawn in place on a terminal, plain log lines otherwise (every logging
 * step), plus one line per evaluation, skipped step and checkpoint.
 */
public final class ProgressListener implements TrainingListener {
  private final PrintStream out;
  private final boolean terminal;
  private final long logEvery;
  private final UnaryOperator<String> words;
  private long total;
  private long start;
  private boolean barShown;

  /**
   * The losses of the steps since the last log line: a line gives their mean, as Hugging Face's
   * Trainer logs the loss over its logging window (metrics.jsonl keeps every step's own).
   */
  private double windowLoss;

  private long windowSteps;

  public ProgressListener(PrintStream out) {
    this(out, stderrIsTerminal(), 10);
  }

  /**
   * Whether standard error is a terminal (where a redrawn bar belongs; a file or pipe gets log
   * lines). System.console() answers for standard input and output, not for standard error: with
   * {@code 2> file} from a terminal the file got the bar's carriage returns. On Linux the answer is
   * where /proc/self/fd/2 points; elsewhere, System.console().
   */
  public static boolean stderrIsTerminal() {
    try {
      String to =
          java.nio.file.Files.readSymbolicLink(java.nio.file.Path.of("/proc/self/fd/2")).toString();
      return to.startsWith("/dev/pts/") || to.startsWith("/dev/tty") || to.equals("/dev/console");
    } catch (java.io.IOException | UnsupportedOperationException | SecurityException e) {
      return System.console() != null;
    }
  }

  public ProgressListener(PrintStream out, boolean terminal, long logEvery) {
    this(out, terminal, logEvery, s -> s);
  }

  /**
   * words rephrases the library's warnings and data reports for the reader (the command line names
   * its flags where the library names TrainingConfig's settings).
   */
  public ProgressListener(
      PrintStream out, boolean terminal, long logEvery, UnaryOperator<String> words) {
    this.out = out;
    this.terminal = terminal;
    this.logEvery = Math.max(1, logEvery);
    this.words = Objects.requireNonNull(words, "words");
  }

  @Override
  public void onTrainBegin(TrainingPlan p) {
    total = p.totalSteps();
    start = p.startStep();
    out.printf(
        Locale.ROOT,
        "training %d steps%s on %s: %d trainable LoRA parameters, %d examples per epoch%n",
        p.totalSteps(),
        p.startStep() > 0 ? " (resuming after step " + p.startStep() + ")" : "",
        p.device(),
        p.trainableParameters(),
        p.trainExamples());
    if (p.trainData() != null)
      out.println("training data: " + words.apply(p.trainData().describe()));
    if (p.validationData() != null)
      out.println("validation data: " + words.apply(p.validationData().describe()));
    if (p.forgettingData() != null)
      out.println("forgetting data: " + words.apply(p.forgettingData().describe()));
    for (String w : p.warnings()) out.println("warning: " + words.apply(w));
  }

  @Override
  public void onStep(StepMetrics m) {
    windowLoss += m.loss();
    windowSteps++;
    if (terminal) {
      int width = 30;
      int filled = total == 0 ? width : (int) (width * m.step() / total);
      double perStep = m.elapsedSeconds() / Math.max(1, m.step() - start);
      long eta = (long) (perStep * (total - m.step()));
      out.printf(
          Locale.ROOT,
          "\r[%s%s] %d/%d loss %.4f lr %.2e %.0f tok/s eta %dm%02ds ",
          "#".repeat(filled),
          ".".repeat(width - filled),
          m.step(),
          total,
          m.loss(),
          m.learningRate(),
          m.tokensPerSecond(),
          eta / 60,
          eta % 60);
      out.flush();
      barShown = true;
      if (m.step() == total) endBar();
    } else if (m.step() % logEvery == 0 || m.step() == total || m.step() == start + 1) {
      out.printf(
          Locale.ROOT,
          "step %d/%d  loss %.4f  grad_norm %.4f  lr %.3e  %.0f tok/s  %.1fs%n",
          m.step(),
          total,
          windowLoss / windowSteps,
          m.gradNorm(),
          m.learningRate(),
          m.tokensPerSecond(),
          m.elapsedSeconds());
      windowLoss = 0;
      windowSteps = 0;
    }
  }

  private void endBar() {
    if (barShown) {
      out.println();
      barShown = false;
    }
  }

  @Override
  public void onSkippedStep(SkippedStep s) {
    endBar();
    out.printf(
        Locale.ROOT, "step %d skipped: %s (batches %s)%n", s.step(), s.reason(), s.dataPosition());
  }

  @Override
  public void onEvaluate(Evaluation e) {
    endBar();
    out.println("eval after step " + e.step() + ": " + describe(e));
  }

  /**
   * One line: the validation loss beside the base model's (the task's gain), and the loss on the
   * forgetting data beside the base model's (its relative change).
   */
  public static String describe(Evaluation e) {
    StringBuilder b = new StringBuilder();
    if (e.hasTask()) {
      b.append(
          String.format(
              Locale.ROOT,
              "loss %.4f (perplexity %.2f); base model %.4f (perplexity %.2f); task loss gain %.4f",
              e.loss(),
              e.perplexity(),
              e.baseLoss(),
              e.basePerplexity(),
              e.taskGain()));
    }
    if (e.hasGeneral()) {
      if (b.length() > 0) b.append("; ");
      b.append(
          String.format(
              Locale.ROOT,
              "general-data loss %.4f, base model %.4f (%+.1f%%)",
              e.generalLoss(),
              e.baseGeneralLoss(),
              100 * e.generalChange()));
    }
    return b.toString();
  }

  @Override
  public void onWarning(long step, String message) {
    endBar();
    out.println("warning: " + words.apply(message));
  }

  @Override
  public void onCheckpoint(java.nio.file.Path dir, long step) {
    endBar();
    out.println("checkpoint " + dir);
  }

  @Override
  public void onTrainEnd(dev.lora4j.TrainingResult r) {
    endBar();
    out.printf(
        Locale.ROOT,
        "done: %d steps (%d skipped) in %.1fs; loss %s; adapter in %s%n",
        r.steps(),
        r.skippedSteps(),
        r.seconds(),
        r.lossChange(),
        r.adapterDir());
    if (r.finalEvaluation() != null) out.println("final eval: " + describe(r.finalEvaluation()));
  }
}
