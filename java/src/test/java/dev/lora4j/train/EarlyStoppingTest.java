package dev.lora4j.train;

import static org.junit.jupiter.api.Assertions.*;

import dev.lora4j.Dataset;
import dev.lora4j.Device;
import dev.lora4j.LoraTrainer;
import dev.lora4j.MistralModel;
import dev.lora4j.TrainingConfig;
import dev.lora4j.TrainingListener;
import dev.lora4j.TrainingResult;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Early stopping on the validation loss (TrainingConfig.earlyStoppingPatience / threshold), as
 * Hugging Face's EarlyStoppingCallback: the decision, the run it ends, and its resume.
 */
class EarlyStoppingTest {
  private static List<TrainingListener.Evaluation> evals(double... losses) {
    List<TrainingListener.Evaluation> l = new ArrayList<>();
    for (int i = 0; i < losses.length; i++) {
      l.add(new TrainingListener.Evaluation(10L * (i + 1), losses[i], 9.0, 100));
    }
    return l;
  }

  @Test
  void stopsAfterPatienceEvaluationsWithoutImprovement() {
    EarlyStopping.State s = EarlyStopping.after(evals(3.0, 2.0, 2.5, 2.4), 2, 0);
    assertTrue(s.stop());
    assertEquals(2.0, s.bestLoss());
    assertEquals(20, s.bestStep());
    assertEquals(2, s.sinceBest());
    // one evaluation short of the patience, or an improvement in between: no stop
    assertFalse(EarlyStopping.after(evals(3.0, 2.0, 2.5), 2, 0).stop());
    assertFalse(EarlyStopping.after(evals(3.0, 2.0, 2.5, 1.9), 2, 0).stop());
    // patience 0: never
    assertFalse(EarlyStopping.after(evals(3.0, 4.0, 5.0, 6.0), 0, 0).stop());
  }

  @Test
  void theThresholdIsAgainstTheLowestLossBefore() {
    // 2.95 and 2.9 each lower the lowest loss before them by 0.05, not more than 0.1: neither
    // counts, though each becomes the best (as the Trainer's best_metric follows any decrease)
    EarlyStopping.State s = EarlyStopping.after(evals(3.0, 2.95, 2.9), 2, 0.1);
    assertTrue(s.stop());
    assertEquals(2.9, s.bestLoss());
    assertEquals(30, s.bestStep());
    assertFalse(EarlyStopping.after(evals(3.0, 2.95, 2.8), 2, 0.1).stop());
  }

  @Test
  void evaluationsWithoutAValidationLossArePassedOver() {
    List<TrainingListener.Evaluation> l = new ArrayList<>(evals(3.0));
    l.add(new TrainingListener.Evaluation(20, Double.NaN, Double.NaN, 0, 5.0, 5.0, 10));
    l.add(new TrainingListener.Evaluation(30, Double.NaN, Double.NaN, 0, 5.0, 5.0, 10));
    assertFalse(EarlyStopping.after(l, 1, 0).stop());
  }

  /** The message of the refusal of b's settings, which must contain part. */
  private static void refused(TrainingConfig.Builder b, String part) {
    IllegalArgumentException e = assertThrows(IllegalArgumentException.class, b::build);
    assertTrue(e.getMessage().contains(part), e.getMessage());
  }

  @Test
  void settingsThatCannotWorkAreRefusedByName(@TempDir Path tmp) {
    refused(
        TrainingConfig.builder().outputDir(tmp).validationFraction(0.1).earlyStoppingPatience(2),
        "evalSteps");
    refused(
        TrainingConfig.builder()
            .outputDir(tmp)
            .forgettingData(tmp.resolve("general.jsonl"))
            .evalSteps(5)
            .earlyStoppingPatience(2),
        "no validation data");
    refused(
        TrainingConfig.builder().outputDir(tmp).earlyStoppingPatience(-1), "earlyStoppingPatience");
    refused(
        TrainingConfig.builder().outputDir(tmp).earlyStoppingThreshold(-0.5),
        "earlyStoppingThreshold");
  }

  private static TrainingConfig.Builder run(Path out) {
    // a threshold no evaluation can meet: the first evaluation (step 2) is the best, the second
    // (step 4) does not improve on it, and with patience 1 the run stops there, of 12 steps
    return TrainerTest.cfg(out)
        .maxSteps(12)
        .validationFraction(0.2)
        .evalSteps(2)
        .earlyStoppingPatience(1)
        .earlyStoppingThreshold(100)
        .saveSteps(2);
  }

  @Test
  void theRunStopsAndItsResumesStopWhereItDid(@TempDir Path tmp) throws Exception {
    Path d = TrainerTest.data(tmp, 64, 1);
    Path out = tmp.resolve("out");
    byte[] adapter;
    try (MistralModel m = MistralModel.load(TrainerTest.MODEL, Device.cpu())) {
      TrainingResult r = LoraTrainer.fit(m, Dataset.jsonl(d), run(out).build(), List.of());
      assertEquals(4, r.steps());
      assertEquals(List.of(2L, 4L), r.evaluations().stream().map(e -> e.step()).toList());
      assertTrue(
          r.warnings().stream().noneMatch(w -> w.contains("no step")), r.warnings()::toString);
      adapter = Files.readAllBytes(r.adapterDir().resolve("adapter_model.safetensors"));
      long stepLines =
          Files.readAllLines(out.resolve("metrics.jsonl")).stream()
              .filter(l -> l.contains("\"type\":\"step\""))
              .count();
      assertEquals(4, stepLines);
    }
    // resumed from the checkpoint of the last step (it records the run's end): nothing to train,
    // even with a patience that would not have stopped it
    try (MistralModel m = MistralModel.load(TrainerTest.MODEL, Device.cpu())) {
      TrainingResult r =
          LoraTrainer.fit(
              m,
              Dataset.jsonl(d),
              run(out).resume(true).earlyStoppingPatience(5).build(),
              List.of());
      assertEquals(4, r.steps());
      assertTrue(Double.isNaN(r.firstLoss()), "a step ran: " + r.firstLoss());
    }
    // resumed from step 2's checkpoint: the replay stops at step 4 again, with the same adapter
    try (Stream<Path> files = Files.walk(out.resolve("checkpoint-4"))) {
      for (Path p : files.sorted(Comparator.reverseOrder()).toList()) Files.delete(p);
    }
    try (MistralModel m = MistralModel.load(TrainerTest.MODEL, Device.cpu())) {
      TrainingResult r =
          LoraTrainer.fit(m, Dataset.jsonl(d), run(out).resume(true).build(), List.of());
      assertEquals(4, r.steps());
      assertEquals(List.of(2L, 4L), r.evaluations().stream().map(e -> e.step()).toList());
      assertArrayEquals(
          adapter, Files.readAllBytes(r.adapterDir().resolve("adapter_model.safetensors")));
    }
  }
}
