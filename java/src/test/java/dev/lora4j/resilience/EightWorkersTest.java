package dev.lora4j.resilience;

import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.lora4j.Aggregation;
import dev.lora4j.Dataset;
import dev.lora4j.Device;
import dev.lora4j.LoraConfig;
import dev.lora4j.LoraTrainer;
import dev.lora4j.MistralModel;
import dev.lora4j.Schedule;
import dev.lora4j.TrainingConfig;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The 8-GPU robust-aggregation runs of the scaling issue, simulated on the CPU: eight virtual
 * workers (gradient accumulation 8, one micro-batch per worker, as eight GPU ranks without
 * accumulation), the shipped model and chat sample, one epoch. One faulty worker (worker 2) and
 * two (workers 2 and 5) under gradient-scale:-10 and alie:1; median, trimmed-mean:2 and krum:2
 * (each tolerates two faulty workers of eight: median and trimmed mean f < n/2, Krum n > 2f + 2)
 * must end within 2% of the same rule's clean final validation loss; the mean must show the damage
 * of gradient-scale. Settings: lora4j.test.eightBatch (rows per worker, default 2), eightBound.
 */
class EightWorkersTest {
  static final Path MODEL = Path.of("../examples/models/tiny-mistral");
  static final Path SAMPLE = Path.of("../examples/data/sample-chat.jsonl");
  static final int BATCH = Integer.getInteger("lora4j.test.eightBatch", 2);
  static final double BOUND =
      Double.parseDouble(System.getProperty("lora4j.test.eightBound", "0.02"));

  static double train(MistralModel m, Path out, Aggregation agg, String faults) {
    TrainingConfig cfg =
        TrainingConfig.builder()
            .outputDir(out)
            .lora(LoraConfig.builder().rank(8).alpha(16).allLinear().build())
            .learningRate(5e-3)
            .schedule(Schedule.cosine().warmupSteps(2))
            .batchSize(BATCH)
            .gradientAccumulation(8)
            .epochs(1)
            .maxSeqLength(128)
            .trainOnCompletionsOnly(true)
            .validationFraction(0.1)
            .shuffleBuffer(0)
            .seed(3)
            .loggingSteps(1000)
            .aggregation(agg)
            .injectFaults(faults)
            .build();
    return LoraTrainer.fit(m, Dataset.jsonl(SAMPLE), cfg, List.of()).finalEvaluation().loss();
  }

  @Test
  void oneAndTwoFaultyOfEightWorkers(@TempDir Path tmp) {
    List<Aggregation> robust =
        List.of(Aggregation.median(), Aggregation.trimmedMean(2), Aggregation.krum(2));
    Map<String, String> faults = new LinkedHashMap<>();
    faults.put("gradient-scale:-10, 1 of 8", "gradient-scale:-10@2");
    faults.put("gradient-scale:-10, 2 of 8", "gradient-scale:-10@2,gradient-scale:-10@5");
    faults.put("alie:1, 1 of 8", "alie:1@2");
    faults.put("alie:1, 2 of 8", "alie:1@2,alie:1@5");
    List<String> table = new ArrayList<>();
    List<String> failures = new ArrayList<>();
    long t = System.nanoTime();
    int k = 0;
    try (MistralModel m = MistralModel.load(MODEL, Device.cpu())) {
      Map<Aggregation, Double> clean = new LinkedHashMap<>();
      clean.put(Aggregation.mean(), train(m, tmp.resolve("r" + k++), Aggregation.mean(), ""));
      for (Aggregation a : robust) clean.put(a, train(m, tmp.resolve("r" + k++), a, ""));
      clean.forEach(
          (a, v) -> table.add(String.format(Locale.ROOT, "%-28s %-14s %.4f", "clean", a, v)));
      for (Map.Entry<String, String> f : faults.entrySet()) {
        List<Aggregation> rules = new ArrayList<>(robust);
        rules.add(0, Aggregation.mean());
        for (Aggregation a : rules) {
          double v = train(m, tmp.resolve("r" + k++), a, f.getValue());
          double d = (v - clean.get(a)) / clean.get(a);
          boolean isMean = a.equals(Aggregation.mean());
          table.add(
              String.format(
                  Locale.ROOT,
                  "%-28s %-14s %.4f (%+.2f%%)%s",
                  f.getKey(),
                  a,
                  v,
                  100 * d,
                  !isMean && Math.abs(d) > BOUND ? " beyond the target" : ""));
          if (isMean) {
            if (f.getKey().startsWith("gradient-scale") && !(d > 0.50))
              failures.add("mean under " + f.getValue() + " shows no damage: " + d);
          } else if (!(Math.abs(d) <= BOUND)) {
            failures.add(a + " under " + f.getValue() + ": " + d + " (bound " + BOUND + ")");
          }
        }
      }
    }
    table.add(
        String.format(
            Locale.ROOT,
            "%d runs (8 workers of %d rows) in %.1f s",
            k,
            BATCH,
            (System.nanoTime() - t) / 1e9));
    System.out.println(
        "eight workers, final validation loss (change against the same rule without faults):\n  "
            + String.join("\n  ", table));
    assertTrue(failures.isEmpty(), String.join("; ", failures));
  }
}
