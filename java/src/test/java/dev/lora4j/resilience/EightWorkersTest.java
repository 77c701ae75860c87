package dev.lora4j.resilience;

import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.lora4j.Aggregation;
import dev.lora4j.Device;
import dev.lora4j.MistralModel;
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
 * workers (gradient accumulation 8, one micro-batch of 4 rows per worker, as eight GPU ranks
 * without accumulation), the shipped model and chat sample, one epoch, the settings of
 * RobustAggregationTest otherwise. One faulty worker (worker 2) and two (workers 2 and 5) under
 * gradient-scale:-10 and alie:1; median, trimmed-mean:2 and krum:2 (each tolerates two faulty
 * workers of eight: median and trimmed mean f < n/2, Krum n > 2f + 2; median and trimmed mean mix
 * first, the default) must end within 2% of the same rule's clean final validation loss; the mean
 * must show the damage of gradient-scale (+117% and +130%; alie:1 moves it by -0.1% and +1.0%).
 * Measured: every robust cell within 1.0%.
 *
 * <p>Also measured, and not asserted: with micro-batches of 2 rows the honest workers spread
 * further and the rules move more: with mixing, median +2.1% and trimmed-mean:2 +1.6% under one
 * gradient-scale worker, +5.5% and +6.2% under two alie:1 workers (without mixing +5.7% / +5.8% and
 * +7.0% / +6.7%); with two epochs of 4-row micro-batches alie:1 on two workers ends median +2.4%,
 * trimmed-mean:2 +2.3%, krum:2 +2.2%, and Krum's runs with a gradient-scale worker end 4% below its
 * clean run (Krum follows one worker's gradient, whose noise decides where a short run ends).
 * Settings: lora4j.test.eightBatch, eightEpochs, eightBound.
 */
class EightWorkersTest {
  static final Path MODEL = Path.of("../examples/models/tiny-mistral");
  static final int BATCH = Integer.getInteger("lora4j.test.eightBatch", 4);
  static final int EPOCHS = Integer.getInteger("lora4j.test.eightEpochs", 1);
  static final double BOUND =
      Double.parseDouble(System.getProperty("lora4j.test.eightBound", "0.02"));

  static double train(MistralModel m, Path out, Aggregation agg, String faults) {
    return RobustAggregationTest.finalLoss(
        m,
        RobustAggregationTest.settings(out, agg, faults)
            .batchSize(BATCH)
            .gradientAccumulation(8)
            .epochs(EPOCHS)
            .build());
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
