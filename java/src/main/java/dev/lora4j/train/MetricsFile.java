package dev.lora4j.train;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.lora4j.Lora4jException;
import dev.lora4j.TrainingListener;
import dev.lora4j.data.DataReport;
import dev.lora4j.data.DataStats;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;

/**
 * metrics.jsonl: one JSON object per line for every applied step ({@code "type":"step"} with step,
 * epoch, loss, grad_norm, learning_rate, tokens, tokens_per_second, elapsed_s, memory_bytes), every
 * skipped step ({@code "type":"skipped"}) and every evaluation ({@code "type":"eval"}: eval_loss,
 * eval_perplexity, base_eval_loss, base_eval_perplexity, eval_tokens, task_loss_gain =
 * base_eval_loss - eval_loss and, with forgetting data, general_loss, base_general_loss,
 * general_loss_change (relative: +0.05 is 5% worse than the base model) and general_tokens). At the
 * start of a run (step: the step it starts after), one {@code "type":"data"} line per data split
 * (split: train, validation or forgetting; lines, examples, truncated, dropped by reason, and the
 * first few dropped or cut examples with file:line, issue and detail) and one {@code
 * "type":"warning"} line per warning; later warnings (forgetting) at the step they were raised.
 * Each line is appended as it happens, in one write to a file kept open for appending (opening and
 * closing it per line cost ~0.35 ms a step; a killed run loses no line the write returned from);
 * the trainer closes it when the run ends ({@link #close()}, or {@link #closeAfterFailure} after an
 * error), as {@link #reset()} and {@link #truncateAfter} do before they replace the file.
 */
public final class MetricsFile implements TrainingListener, AutoCloseable {
  private static final ObjectMapper JSON = new ObjectMapper();
  private final Path path;
  private FileChannel out; // open for appending between the first line and close()

  public MetricsFile(Path path) {
    this.path = path;
  }

  public Path path() {
    return path;
  }

  /** Starts an empty file (a fresh run). */
  public void reset() {
    close();
    try {
      Files.deleteIfExists(path);
    } catch (IOException e) {
      throw new Lora4jException("cannot reset " + path + ": " + e, e);
    }
  }

  /** The lines the file holds (blank ones not counted), 0 when there is none. */
  public long lineCount() {
    if (!Files.exists(path)) return 0;
    try (java.util.stream.Stream<String> lines = Files.lines(path, StandardCharsets.UTF_8)) {
      return lines.filter(l -> !l.isBlank()).count();
    } catch (IOException | java.io.UncheckedIOException e) {
      throw new Lora4jException("cannot read " + path + ": " + e, e);
    }
  }

  /**
   * Keeps only the first n lines (blank ones not counted): a run resumed from its recorded end
   * continues the file as the run left it.
   */
  public void keepLines(long n) {
    close();
    if (!Files.exists(path)) return;
    try {
      List<String> keep = new ArrayList<>();
      for (String line : Files.readAllLines(path, StandardCharsets.UTF_8)) {
        if (line.isBlank()) continue;
        if (keep.size() >= n) break;
        keep.add(line);
      }
      Files.write(path, keep, StandardCharsets.UTF_8);
    } catch (IOException e) {
      throw new Lora4jException("cannot rewrite " + path + ": " + e, e);
    }
  }

  /**
   * Keeps only the lines of steps up to step (a resumed run continues the file).
   *
   * @return a note naming the lines that were not JSON and were dropped (the last one may have been
   *     cut by a kill; one before it was damaged otherwise), or null when there were none
   */
  public String truncateAfter(long step) {
    close();
    if (!Files.exists(path)) return null;
    try {
      List<String> keep = new ArrayList<>();
      List<String> bad = new ArrayList<>();
      List<String> all = Files.readAllLines(path, StandardCharsets.UTF_8);
      for (int i = 0; i < all.size(); i++) {
        String line = all.get(i);
        if (line.isBlank()) continue;
        try {
          if (JSON.readTree(line).path("step").asLong() <= step) keep.add(line);
        } catch (IOException e) {
          bad.add(String.valueOf(i + 1));
        }
      }
      Files.write(path, keep, StandardCharsets.UTF_8);
      return bad.isEmpty()
          ? null
          : path
              + ": line(s) "
              + String.join(", ", bad)
              + " of "
              + all.size()
              + " were not JSON (a write cut by a kill, or damage) and were dropped on resuming;"
              + " the records they held are lost";
    } catch (IOException e) {
      throw new Lora4jException("cannot rewrite " + path + ": " + e, e);
    }
  }

  /** Non-finite numbers are written as null (JSON has no NaN). */
  static void num(ObjectNode n, String key, double v) {
    if (Double.isFinite(v)) n.put(key, v);
    else n.putNull(key);
  }

  private void append(ObjectNode n) {
    try {
      ByteBuffer line =
          ByteBuffer.wrap((JSON.writeValueAsString(n) + "\n").getBytes(StandardCharsets.UTF_8));
      if (out == null)
        out = FileChannel.open(path, StandardOpenOption.CREATE, StandardOpenOption.APPEND);
      while (line.hasRemaining()) out.write(line);
    } catch (IOException e) {
      close();
      throw new Lora4jException("cannot write " + path + ": " + e, e);
    }
  }

  /**
   * Closes the file after a run that failed; a failure to close it is added to that run's error
   * rather than replacing it (every line was written before the close).
   */
  public void closeAfterFailure(Throwable runError) {
    try {
      close();
    } catch (Lora4jException e) {
      runError.addSuppressed(e);
    }
  }

  /** Closes the file if a line opened it (the next line opens it again). */
  @Override
  public void close() {
    if (out == null) return;
    try {
      out.close();
    } catch (IOException e) {
      throw new Lora4jException("cannot close " + path + ": " + e, e);
    } finally {
      out = null;
    }
  }

  @Override
  public void onTrainBegin(TrainingPlan p) {
    data(p.startStep(), "train", p.trainData());
    data(p.startStep(), "validation", p.validationData());
    data(p.startStep(), "forgetting", p.forgettingData());
    for (String w : p.warnings()) {
      ObjectNode n = JSON.createObjectNode();
      n.put("type", "warning");
      n.put("step", p.startStep());
      n.put("message", w);
      append(n);
    }
  }

  private void data(long step, String split, DataReport r) {
    if (r == null) return;
    ObjectNode n = JSON.createObjectNode();
    n.put("type", "data");
    n.put("step", step);
    n.put("split", split);
    n.put("lines", r.lines());
    n.put("examples", r.examples());
    n.put("tokens", r.tokens());
    n.put("truncated", r.truncated());
    ObjectNode d = n.putObject("dropped");
    for (DataStats.SkipReason reason : DataStats.SkipReason.values()) {
      d.put(reason.name().toLowerCase(Locale.ROOT), r.dropped(reason));
    }
    ArrayNode first = n.putArray("first");
    for (DataStats.Noted x : r.noted()) {
      first
          .addObject()
          .put("where", x.where())
          .put("issue", x.issue().name().toLowerCase(Locale.ROOT))
          .put("detail", x.detail());
    }
    append(n);
  }

  @Override
  public void onStep(StepMetrics m) {
    ObjectNode n = JSON.createObjectNode();
    n.put("type", "step");
    n.put("step", m.step());
    num(n, "epoch", m.epoch());
    num(n, "loss", m.loss());
    num(n, "grad_norm", m.gradNorm());
    num(n, "learning_rate", m.learningRate());
    n.put("tokens", m.tokens());
    num(n, "tokens_per_second", m.tokensPerSecond());
    num(n, "elapsed_s", m.elapsedSeconds());
    n.put("memory_bytes", m.memoryBytes());
    append(n);
  }

  @Override
  public void onSkippedStep(SkippedStep s) {
    ObjectNode n = JSON.createObjectNode();
    n.put("type", "skipped");
    n.put("step", s.step());
    n.put("reason", s.reason());
    num(n, "loss", s.loss());
    num(n, "grad_norm", s.gradNorm());
    n.put("data_position", s.dataPosition());
    append(n);
  }

  @Override
  public void onEvaluate(Evaluation e) {
    ObjectNode n = JSON.createObjectNode();
    n.put("type", "eval");
    n.put("step", e.step());
    num(n, "eval_loss", e.loss());
    num(n, "eval_perplexity", e.perplexity());
    num(n, "base_eval_loss", e.baseLoss());
    num(n, "base_eval_perplexity", e.basePerplexity());
    n.put("eval_tokens", e.tokens());
    num(n, "task_loss_gain", e.taskGain());
    if (e.hasGeneral()) {
      num(n, "general_loss", e.generalLoss());
      num(n, "base_general_loss", e.baseGeneralLoss());
      num(n, "general_loss_change", e.generalChange());
      n.put("general_tokens", e.generalTokens());
    }
    append(n);
  }

  @Override
  public void onWarning(long step, String message) {
    ObjectNode n = JSON.createObjectNode();
    n.put("type", "warning");
    n.put("step", step);
    n.put("message", message);
    append(n);
  }
}
