package dev.lora4j.train;

import static org.junit.jupiter.api.Assertions.*;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.lora4j.Dataset;
import dev.lora4j.Device;
import dev.lora4j.LoraConfig;
import dev.lora4j.LoraTrainer;
import dev.lora4j.MistralModel;
import dev.lora4j.Schedule;
import dev.lora4j.TrainingConfig;
import dev.lora4j.TrainingListener;
import dev.lora4j.TrainingResult;
import dev.lora4j.cli.Main;
import dev.lora4j.data.DataConfig;
import dev.lora4j.data.JsonlDataset;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The forgetting check: general data evaluated with the base model once and with the adapter at
 * every evaluation, reported beside the task's gain, with a warning when its loss rises too much.
 */
class ForgettingCheckTest {
  static final Path MODEL = Path.of("../examples/models/tiny-mistral");
  static final Path SAMPLE = Path.of("../examples/data/sample-chat.jsonl");
  static final Path GENERAL = Path.of("../examples/data/general-text.jsonl");
  static final ObjectMapper JSON = new ObjectMapper();

  /** The first n lines of the shipped general-text sample. */
  static Path general(Path dir, int n) throws Exception {
    Path f = dir.resolve("general.jsonl");
    Files.write(f, Files.readAllLines(GENERAL).subList(0, n));
    return f;
  }

  static final class Recorder implements TrainingListener {
    final List<Evaluation> evals = new ArrayList<>();
    final List<String> warnings = new ArrayList<>();
    TrainingPlan plan;

    @Override
    public void onTrainBegin(TrainingPlan p) {
      plan = p;
    }

    @Override
    public void onEvaluate(Evaluation e) {
      evals.add(e);
    }

    @Override
    public void onWarning(long step, String message) {
      warnings.add(step + ": " + message);
    }
  }

  @Test
  void generalLossBesideTheTaskGainAtEveryEvaluation(@TempDir Path tmp) throws Exception {
    Path general = general(tmp, 40);
    Recorder rec = new Recorder();
    ByteArrayOutputStream progress = new ByteArrayOutputStream();
    TrainingResult r;
    try (MistralModel model = MistralModel.load(MODEL, Device.cpu())) {
      TrainingConfig cfg =
          TrainingConfig.builder()
              .outputDir(tmp.resolve("run"))
              .maxSteps(20)
              .batchSize(8)
              .learningRate(5e-3)
              .schedule(Schedule.cosine().warmupSteps(2))
              .lora(LoraConfig.builder().rank(8).alpha(16).allLinear().build())
              .trainOnCompletionsOnly(true)
              .validationFraction(0.1)
              .evalSteps(10)
              .forgettingData(general)
              .forgettingWarn(0.5)
              .seed(3)
              .build();
      r =
          LoraTrainer.fit(
              model,
              Dataset.jsonl(SAMPLE),
              cfg,
              List.of(
                  rec,
                  new ProgressListener(
                      new PrintStream(progress, true, StandardCharsets.UTF_8), false, 10)));

      // the numbers are the losses of the base model and of the trained adapter on that data
      JsonlDataset data =
          JsonlDataset.open(
              general,
              model.textEncoder(),
              model.chatEncoder(),
              DataConfig.builder()
                  .completionsOnly(false)
                  .shuffleBuffer(0)
                  .maxSeqLength(2048)
                  .batchSize(3)
                  .build());
      double withAdapter = LoraTrainer.evaluate(model, data).mean();
      model.detachAdapter();
      double base = LoraTrainer.evaluate(model, data).mean();
      TrainingListener.Evaluation last = r.finalEvaluation();
      assertEquals(base, last.baseGeneralLoss(), 1e-4);
      assertEquals(withAdapter, last.generalLoss(), 1e-4);
    }
    assertEquals(2, r.evaluations().size());
    assertEquals(rec.evals, r.evaluations());
    assertNotNull(rec.plan.forgettingData());
    assertEquals(40, rec.plan.forgettingData().examples());
    assertEquals(40, r.forgettingData().examples());
    for (TrainingListener.Evaluation e : r.evaluations()) {
      assertTrue(e.hasTask() && e.hasGeneral());
      assertTrue(e.generalTokens() > 1000, "tokens " + e.generalTokens());
      assertEquals(
          r.evaluations().get(0).baseGeneralLoss(),
          e.baseGeneralLoss(),
          "the base is evaluated once");
      assertTrue(e.taskGain() > 0, "the task loss fell: " + e);
      assertEquals(
          (e.generalLoss() - e.baseGeneralLoss()) / e.baseGeneralLoss(), e.generalChange(), 1e-12);
    }
    List<JsonNode> lines = new ArrayList<>();
    for (String l : Files.readAllLines(tmp.resolve("run/metrics.jsonl")))
      lines.add(JSON.readTree(l));
    assertTrue(
        lines.stream()
            .anyMatch(
                n ->
                    n.path("type").asText().equals("data")
                        && n.path("split").asText().equals("forgetting")
                        && n.path("examples").asLong() == 40));
    List<JsonNode> evals =
        lines.stream().filter(n -> n.path("type").asText().equals("eval")).toList();
    assertEquals(2, evals.size());
    for (int i = 0; i < 2; i++) {
      TrainingListener.Evaluation e = r.evaluations().get(i);
      JsonNode n = evals.get(i);
      assertEquals(e.generalLoss(), n.path("general_loss").asDouble(), 1e-12);
      assertEquals(e.baseGeneralLoss(), n.path("base_general_loss").asDouble(), 1e-12);
      assertEquals(e.generalChange(), n.path("general_loss_change").asDouble(), 1e-12);
      assertEquals(e.taskGain(), n.path("task_loss_gain").asDouble(), 1e-12);
      assertEquals(e.generalTokens(), n.path("general_tokens").asLong());
    }
    String out = progress.toString(StandardCharsets.UTF_8);
    assertTrue(out.contains("forgetting data: 40 lines: 40 examples"), out);
    assertTrue(out.contains("task loss gain") && out.contains("general-data loss"), out);
    assertTrue(out.contains("final eval: "), out);
    // a rise under the allowed 50% is no warning
    assertEquals(List.of(), rec.warnings);
  }

  @Test
  void aRiseBeyondTheAllowedFractionIsAWarningEverywhere(@TempDir Path tmp) throws Exception {
    // one token over and over: the model learns to predict it everywhere and gets worse at text
    StringBuilder sb = new StringBuilder();
    for (int i = 0; i < 64; i++)
      sb.append("{\"input_ids\":[").append("5,".repeat(40)).append("5]}\n");
    Path poison = tmp.resolve("poison.jsonl");
    Files.writeString(poison, sb);
    Path general = general(tmp, 12);
    Path out = tmp.resolve("run");
    StringWriter err = new StringWriter();
    ByteArrayOutputStream stdout = new ByteArrayOutputStream();
    PrintStream oldOut = System.out, oldErr = System.err;
    ByteArrayOutputStream stderr = new ByteArrayOutputStream();
    System.setOut(new PrintStream(stdout, true, StandardCharsets.UTF_8));
    System.setErr(new PrintStream(stderr, true, StandardCharsets.UTF_8));
    int code;
    try {
      code =
          Main.run(
              new String[] {
                "train",
                "--model",
                MODEL.toString(),
                "--data",
                poison.toString(),
                "--output",
                out.toString(),
                "--device",
                "cpu",
                "--steps",
                "12",
                "--batch-size",
                "8",
                "--lr",
                "1e-2",
                "--rank",
                "8",
                "--alpha",
                "16",
                "--targets",
                "all-linear",
                "--no-guard",
                "--forgetting-data",
                general.toString(),
                "--eval-steps",
                "6"
              },
              new PrintWriter(new StringWriter(), true),
              new PrintWriter(err, true));
    } finally {
      System.setOut(oldOut);
      System.setErr(oldErr);
    }
    String so = stdout.toString(StandardCharsets.UTF_8),
        se = stderr.toString(StandardCharsets.UTF_8);
    assertEquals(0, code, err + se);
    // the summary: general-data loss beside the base model's, and the warning in the flags' words
    assertTrue(so.contains("general-data loss: "), so);
    assertFalse(so.contains("eval loss: "), "no validation data, no task line: " + so);
    assertTrue(
        so.contains("warning: possible forgetting after step 12")
            && so.contains("(--forgetting-warn)"),
        so);
    // the progress display warned at each evaluation
    assertTrue(se.contains("warning: possible forgetting after step 6"), se);
    List<JsonNode> warnings = new ArrayList<>();
    int evals = 0;
    for (String l : Files.readAllLines(out.resolve("metrics.jsonl"))) {
      JsonNode n = JSON.readTree(l);
      if (n.path("type").asText().equals("warning")) warnings.add(n);
      if (n.path("type").asText().equals("eval")) {
        evals++;
        assertTrue(n.path("eval_loss").isNull(), "no validation data: " + n);
        assertTrue(n.path("general_loss_change").asDouble() > 0.05, n.toString());
      }
    }
    assertEquals(2, evals, "an eval line at steps 6 and 12");
    assertEquals(List.of(6L, 12L), warnings.stream().map(n -> n.path("step").asLong()).toList());
    assertTrue(warnings.get(1).path("message").asText().contains("general.jsonl"));
  }
}
