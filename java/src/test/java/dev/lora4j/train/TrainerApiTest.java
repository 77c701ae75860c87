package dev.lora4j.train;

import static org.junit.jupiter.api.Assertions.*;

import dev.lora4j.Dataset;
import dev.lora4j.Device;
import dev.lora4j.LoraTrainer;
import dev.lora4j.MistralModel;
import dev.lora4j.TrainingConfig;
import dev.lora4j.TrainingResult;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** What a Java caller of the trainer sees: refusals, warnings, results and evaluate. */
class TrainerApiTest {
  @Test
  void evalStepsWithNothingToEvaluateIsRefused(@TempDir Path tmp) {
    var e =
        assertThrows(
            IllegalArgumentException.class,
            () -> TrainingConfig.builder().outputDir(tmp).evalSteps(5).build());
    assertTrue(
        e.getMessage().contains("evalSteps is 5")
            && e.getMessage().contains("validationFile, validationFraction or forgettingData"),
        e.getMessage());
    assertDoesNotThrow(
        () -> TrainingConfig.builder().outputDir(tmp).evalSteps(5).validationFraction(0.1).build());
    assertDoesNotThrow(
        () ->
            TrainingConfig.builder()
                .outputDir(tmp)
                .evalSteps(5)
                .forgettingData(tmp.resolve("general.jsonl"))
                .build());
    assertDoesNotThrow(() -> TrainingConfig.builder().outputDir(tmp).build());
  }

  @Test
  void aLargeLossToTheLengthLimitIsAWarning(@TempDir Path tmp) throws Exception {
    Path d = TrainerTest.data(tmp, 16, 1); // rows of 6 to 17 tokens
    try (MistralModel m = MistralModel.load(TrainerTest.MODEL, Device.cpu())) {
      TrainingResult cut =
          LoraTrainer.fit(
              m,
              Dataset.jsonl(d),
              TrainerTest.cfg(tmp.resolve("cut")).maxSteps(1).maxSeqLength(5).build(),
              List.of());
      String w = String.join("\n", cut.warnings());
      assertTrue(
          w.contains(
                  "16 of the training data's 16 lines (100%) lost tokens to the length limit of 5")
              && w.contains(": 16 cut;"),
          w);
      TrainingResult whole =
          LoraTrainer.fit(
              m,
              Dataset.jsonl(d),
              TrainerTest.cfg(tmp.resolve("whole")).maxSteps(1).build(),
              List.of());
      assertFalse(
          String.join("\n", whole.warnings()).contains("maxSeqLength"),
          whole.warnings().toString());
    }
  }

  @Test
  void aLineCutToNothingThatCountsIsCountedOnce(@TempDir Path tmp) throws Exception {
    // 10 lines: 8 short, 2 whose labelled tokens lie past the limit (cut, then dropped): 20%
    StringBuilder sb = new StringBuilder();
    for (int i = 0; i < 8; i++) sb.append("{\"input_ids\":[3,4,5,6,7,8]}\n");
    for (int i = 0; i < 2; i++)
      sb.append(
          "{\"input_ids\":[3,4,5,6,7,8,9,10,11,12],"
              + "\"labels\":[-100,-100,-100,-100,-100,-100,-100,-100,11,12]}\n");
    Path d = Files.writeString(tmp.resolve("d.jsonl"), sb);
    try (MistralModel m = MistralModel.load(TrainerTest.MODEL, Device.cpu())) {
      TrainingResult r =
          LoraTrainer.fit(
              m,
              Dataset.jsonl(d),
              TrainerTest.cfg(tmp.resolve("out")).maxSteps(1).maxSeqLength(8).build(),
              List.of());
      assertEquals(0, r.truncatedExamples(), r.trainData().describe());
      assertEquals(2, r.skippedExamples(), r.trainData().describe());
      String w = String.join("\n", r.warnings());
      assertTrue(
          w.contains("2 of the training data's 10 lines (20%)")
              && w.contains(": 2 dropped with nothing to learn;"),
          w);
    }
  }

  @Test
  void resumingAFinishedRunSaysSo(@TempDir Path tmp) throws Exception {
    Path d = TrainerTest.data(tmp, 16, 2);
    TrainingConfig c = TrainerTest.cfg(tmp.resolve("out")).maxSteps(4).saveSteps(2).build();
    try (MistralModel m = MistralModel.load(TrainerTest.MODEL, Device.cpu())) {
      TrainingResult first = LoraTrainer.fit(m, Dataset.jsonl(d), c, List.of());
      assertEquals(4, first.steps());
      assertFalse(Double.isNaN(first.firstLoss()));
      byte[] adapter = Files.readAllBytes(first.adapterDir().resolve("adapter_model.safetensors"));
      ByteArrayOutputStream console = new ByteArrayOutputStream();
      TrainingResult again =
          LoraTrainer.fit(
              m,
              Dataset.jsonl(d),
              c.toBuilder().resume(true).build(),
              List.of(
                  new ProgressListener(new PrintStream(console, true, StandardCharsets.UTF_8))));
      assertEquals(4, again.steps());
      assertTrue(Double.isNaN(again.firstLoss()) && Double.isNaN(again.finalLoss()));
      assertTrue(
          String.join("\n", again.warnings()).contains("at the run's last step (4 of 4)"),
          again.warnings().toString());
      String out = console.toString(StandardCharsets.UTF_8);
      assertTrue(out.contains("no step in this run") && !out.contains("NaN"), out);
      assertArrayEquals(
          adapter, Files.readAllBytes(again.adapterDir().resolve("adapter_model.safetensors")));
    }
  }

  @Test
  void evaluateGivesFitsValidationLoss(@TempDir Path tmp) throws Exception {
    Path d = TrainerTest.data(Files.createDirectories(tmp.resolve("train")), 24, 3);
    Path v = TrainerTest.data(Files.createDirectories(tmp.resolve("valid")), 8, 4);
    TrainingConfig c =
        TrainerTest.cfg(tmp.resolve("out")).maxSteps(3).validationFile(v).batchSize(3).build();
    try (MistralModel m = MistralModel.load(TrainerTest.MODEL, Device.cpu())) {
      TrainingResult r = LoraTrainer.fit(m, Dataset.jsonl(d), c, List.of());
      double fitLoss = r.finalEvaluation().loss();
      double after = LoraTrainer.evaluate(m, Dataset.jsonl(v), c).mean();
      assertEquals(
          fitLoss, after, 1e-12 * Math.abs(fitLoss), "fit " + fitLoss + " evaluate " + after);
      m.detachAdapter();
      double base = LoraTrainer.evaluate(m, Dataset.jsonl(v), c).mean();
      assertEquals(r.finalEvaluation().baseLoss(), base, 1e-12 * Math.abs(base));
      assertNotEquals(base, after);
    }
  }

  @Test
  void stepTimesChargeEvaluationAndCheckpointsApart() throws Exception {
    StepTimes t = new StepTimes();
    for (int i = 0; i < 3; i++) {
      t.begin();
      Thread.sleep(2);
      t.mark(StepTimes.Phase.EVALUATION);
      t.mark(StepTimes.Phase.LISTENERS);
      Thread.sleep(2);
      t.mark(StepTimes.Phase.CHECKPOINTS);
      t.end();
    }
    assertEquals(2, t.steps());
    assertTrue(t.meanMillis(StepTimes.Phase.EVALUATION) >= 2, t.summary());
    assertTrue(t.meanMillis(StepTimes.Phase.CHECKPOINTS) >= 2, t.summary());
    assertTrue(t.meanMillis(StepTimes.Phase.LISTENERS) < 2, t.summary());
    assertTrue(t.summary().contains(", evaluation ") && t.summary().contains(", checkpoints "));
  }

  @Test
  void stepTimesShowEachListenersShareAfterTheFirstStep() {
    StepTimes t = new StepTimes();
    for (int i = 0; i < 3; i++) {
      t.begin();
      t.part("metrics.jsonl", 1_000_000 * (i + 1)); // 1 ms at the warm-up step, 2 and 3 after
      t.part("progress", 10_000);
      t.mark(StepTimes.Phase.LISTENERS);
      t.end();
    }
    assertEquals(2.5, t.partMillis("metrics.jsonl"), 1e-9, t.summary());
    assertEquals(0.01, t.partMillis("progress"), 1e-9, t.summary());
    assertEquals(0.0, t.partMillis("never charged"));
    assertTrue(t.summary().endsWith("; listeners: metrics.jsonl 2.50, progress 0.01"), t.summary());
    assertFalse(new StepTimes().summary().contains("; listeners:"));
  }

  /**
   * Every step refused (one worker's gradient NaN under the mean, which refuses a non-finite
   * aggregate): a run bounded by steps stops with an error once an epoch's steps and their retries
   * were all refused, instead of reading the data again without end, the refused batches in
   * rejected.jsonl; one bounded by epochs ends after its last with a warning that says why no step
   * was applied.
   */
  @Test
  @org.junit.jupiter.api.Timeout(
      value = 300,
      threadMode = org.junit.jupiter.api.Timeout.ThreadMode.SEPARATE_THREAD)
  void aRunWhoseEveryStepIsRefusedStops(@TempDir Path tmp) throws Exception {
    Path d = TrainerTest.data(tmp, 16, 1); // 16 rows: 4 batches of 4, 2 steps of 2 an epoch
    try (MistralModel m = MistralModel.load(TrainerTest.MODEL, Device.cpu())) {
      Path out = tmp.resolve("steps");
      TrainingConfig bySteps =
          TrainerTest.cfg(out)
              .gradientAccumulation(2)
              .injectFaults("nan@0")
              .shuffleBuffer(0)
              .maxSteps(5)
              .build();
      var e =
          assertThrows(
              dev.lora4j.Lora4jException.class,
              () -> LoraTrainer.fit(m, Dataset.jsonl(d), bySteps, List.of()));
      assertTrue(
          e.getMessage()
                  .startsWith(
                      "no optimizer step could be applied: the last 4 attempts in a row were"
                          + " refused, twice the 2 step(s) of an epoch")
              && e.getMessage().contains("the last because: ")
              && e.getMessage().contains("rejected.jsonl"),
          e.getMessage());
      assertEquals(4, Files.readAllLines(out.resolve("rejected.jsonl")).size());

      TrainingResult byEpochs =
          LoraTrainer.fit(
              m,
              Dataset.jsonl(d),
              TrainerTest.cfg(tmp.resolve("epochs"))
                  .gradientAccumulation(2)
                  .injectFaults("nan@0")
                  .shuffleBuffer(0)
                  .epochs(3)
                  .build(),
              List.of());
      assertEquals(0, byEpochs.steps());
      assertEquals(12, byEpochs.rejectedBatches());
      String w = String.join("\n", byEpochs.warnings());
      assertTrue(
          w.contains("no step was applied: the 12 tried were refused (the last because: ")
              && !w.contains("no batch with label tokens"),
          w);
    }
  }
}
