package dev.lora4j.resilience;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.lora4j.*;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A run whose last checkpoint is at its last step, after which the guard refused the last batch
 * (twice: the run ended before a retry could apply it) and the final evaluation ran: resumed, the
 * finished run refuses and evaluates nothing again (its checkpoint records the run's end).
 */
class FinishedRunResumeTest {
  @Test
  void aFinishedRunResumedRepeatsNothingOfItsEnd(@TempDir Path tmp) throws Exception {
    try (MistralModel m = MistralModel.load(PoisonedBatchTest.MODEL, Device.cpu())) {
      List<String> rows = PoisonedBatchTest.sampleRows(m);
      List<String> val = rows.subList(0, 32);
      List<String> train = new ArrayList<>(rows.subList(32, 32 + 288));
      train.addAll(PoisonedBatchTest.garbageRows(8)); // the run's last batch
      Path valF = tmp.resolve("val.jsonl"), bad = tmp.resolve("bad.jsonl");
      Files.write(valF, val);
      Files.write(bad, train);
      Path out = tmp.resolve("out");
      TrainingConfig cfg = PoisonedBatchTest.settings(out, valF).saveSteps(36).build();
      TrainingResult r1 = LoraTrainer.fit(m, Dataset.jsonl(bad), cfg, List.of());
      assertEquals(36, r1.steps());
      assertTrue(r1.rejectedBatches() >= 1, "the garbage batch is refused");
      List<String> rejected = Files.readAllLines(out.resolve("rejected.jsonl"));
      List<String> metrics = records(out.resolve("metrics.jsonl"));
      TrainingResult r2 =
          LoraTrainer.fit(m, Dataset.jsonl(bad), cfg.toBuilder().resume(true).build(), List.of());
      assertEquals(r1.rejectedBatches(), r2.rejectedBatches());
      assertEquals(rejected, Files.readAllLines(out.resolve("rejected.jsonl")));
      // the steps, refusals and evaluation once each (a resumed run adds its own data reports)
      assertEquals(metrics, records(out.resolve("metrics.jsonl")));
      assertTrue(
          r2.warnings().stream()
              .anyMatch(w -> w.contains("records the run's end at step 36 of 37")),
          r2.warnings().toString());
      assertTrue(
          r2.warnings().stream().noneMatch(w -> w.startsWith("no step")), r2.warnings().toString());
      assertEquals(r1.finalEvaluation().loss(), r2.finalEvaluation().loss());
    }
  }

  /** The step, skipped and eval lines of a metrics.jsonl. */
  private static List<String> records(Path f) throws java.io.IOException {
    List<String> out = new ArrayList<>();
    for (String l : Files.readAllLines(f)) {
      if (l.contains("\"type\":\"step\"")
          || l.contains("\"type\":\"skipped\"")
          || l.contains("\"type\":\"eval\"")) out.add(l);
    }
    return out;
  }
}
