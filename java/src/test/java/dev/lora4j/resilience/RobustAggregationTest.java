package dev.lora4j.resilience;

import static org.junit.jupiter.api.Assertions.*;

import dev.lora4j.Aggregation;
import dev.lora4j.Dataset;
import dev.lora4j.Device;
import dev.lora4j.LoraConfig;
import dev.lora4j.LoraTrainer;
import dev.lora4j.MistralModel;
import dev.lora4j.Schedule;
import dev.lora4j.TrainingConfig;
import dev.lora4j.TrainingResult;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Byzantine-robust aggregation on the CPU with virtual workers: the shipped model and chat sample,
 * gradient accumulation 6 (six workers per step) with micro-batches of 4 rows, one epoch (12 steps,
 * learning rate 5e-3 with 2 warmup steps and cosine decay, as the sample's demo), one faulty worker
 * (worker 2) under each fault kind, each run's final validation loss compared with the same rule's
 * clean run. The clean runs are shared by the faults: 27 runs, 135 s on 2 cores (215 s of CPU; 226
 * s on busy cores). The rules are the defaults: median, trimmed-mean:1 and centered-clip mix first
 * (nearest-neighbour mixing, see {@link Aggregation}), Krum does not.
 *
 * <p>Measured (deterministic: the CPU engine gives the same bits on every thread count): the mean
 * is wrecked by gradient-scale:-8 (+133.5%) and alie:20 (+74.8%); every robust cell is within 2%:
 * median +0.75% to +1.36%, trimmed-mean:1 -0.43% (-0.19% under random-tokens: far faulty workers
 * enter no honest mixture, so every honest mixture is the honest workers' mean), Krum +0.90%,
 * centered-clip +0.44% to +1.31% (nan: the worker is set aside before mixing).
 *
 * <p>Without mixing ({@code :no-mixing}) three cells missed the 2% target: median (+2.02%) and
 * trimmed-mean:1 (+2.13%) under gradient-scale:-8, whose worker is the extreme value of nearly
 * every coordinate and moves both rules by a fraction of the honest spread, always the same way;
 * and centered-clip under gradient-noise:0.05 (+4.0%), clipped to the median distance tau but not
 * dropped, so each of its three rounds added noise of length tau / n. Larger micro-batches did not
 * close them (6 rows: +1.8%, +2.3%, +4.2%), and more steps made the plain rules drift further (2
 * rows and 24 steps: median +6.1% under gradient-scale). Bucketing (Karimireddy, He and Jaggi,
 * 2022: the rule over the means of random buckets of 2, a new permutation every step) made them
 * worse: median +4.12%, trimmed-mean:1 +3.28%, centered-clip +4.71% under gradient-scale and +7.84%
 * under gradient-noise (3 buckets of 2: the spoiled bucket is still the extreme, and the gap
 * between the 2 honest bucket means is wider than between the middle of 5 workers); buckets of 3
 * leave 2 buckets, below the median's n >= 3. Settings: lora4j.test.robustBatch, robustSteps,
 * robustLr, robustSchedule, robustBound (the target, 0.02), robustRules and robustFaults
 * (';'-separated subsets, for measuring one cell; rules as {@link Aggregation#parse} reads them,
 * e.g. median:no-mixing).
 */
class RobustAggregationTest {
  static final Path MODEL = Path.of("../examples/models/tiny-mistral");
  static final Path SAMPLE = Path.of("../examples/data/sample-chat.jsonl");
  static final int STEPS = Integer.getInteger("lora4j.test.robustSteps", 12);
  static final int BATCH = Integer.getInteger("lora4j.test.robustBatch", 4);
  static final String ONLY_RULES = System.getProperty("lora4j.test.robustRules", "");
  static final String ONLY_FAULTS = System.getProperty("lora4j.test.robustFaults", "");
  static final double LR = Double.parseDouble(System.getProperty("lora4j.test.robustLr", "5e-3"));
  static final String SCHEDULE = System.getProperty("lora4j.test.robustSchedule", "cosine");
  static final double BOUND =
      Double.parseDouble(System.getProperty("lora4j.test.robustBound", "0.02"));

  static final Map<String, String> FAULTS = new LinkedHashMap<>();

  static {
    FAULTS.put("gradient-scale", "gradient-scale:-8@2");
    FAULTS.put("gradient-noise", "gradient-noise:0.05@2");
    FAULTS.put("nan", "nan@2");
    FAULTS.put("random-tokens", "random-tokens@2");
    FAULTS.put("alie", "alie:20@2");
  }

  /**
   * The settings every robust-aggregation run on the shipped sample shares (this test's and
   * EightWorkersTest's): LoRA r 8 on all linear layers, the sample demo's learning rate and
   * schedule, completions only, a tenth held out; the caller sets the workers and the length.
   */
  static TrainingConfig.Builder settings(Path out, Aggregation agg, String faults) {
    return TrainingConfig.builder()
        .outputDir(out)
        .lora(LoraConfig.builder().rank(8).alpha(16).allLinear().build())
        .learningRate(LR)
        .schedule(Schedule.parse(SCHEDULE).warmupSteps(2))
        .maxSeqLength(128)
        .trainOnCompletionsOnly(true)
        .validationFraction(0.1)
        .shuffleBuffer(0)
        .seed(3)
        .loggingSteps(1000)
        .aggregation(agg)
        .injectFaults(faults);
  }

  /** The final validation loss of a run with those settings. */
  static double finalLoss(MistralModel m, TrainingConfig cfg) {
    TrainingResult r = LoraTrainer.fit(m, Dataset.jsonl(SAMPLE), cfg, List.of());
    return r.finalEvaluation().loss();
  }

  static double train(MistralModel m, Path out, Aggregation agg, String faults) {
    return finalLoss(
        m,
        settings(out, agg, faults)
            .batchSize(BATCH)
            .gradientAccumulation(6)
            .maxSteps(STEPS)
            .build());
  }

  static long cpu() {
    return ((com.sun.management.OperatingSystemMXBean)
            java.lang.management.ManagementFactory.getOperatingSystemMXBean())
        .getProcessCpuTime();
  }

  /**
   * Workers whose gradients are not finite are set aside by the robust rules and counted against
   * their tolerance: two NaN workers of six leave the median's steps finite, but are more than
   * trimmed-mean:1 tolerates, whose steps are then refused and written to rejected.jsonl with the
   * reason.
   */
  @Test
  void nonFiniteWorkersAreSetAsideWithinTheToleranceAndRefusedBeyondIt(@TempDir Path tmp)
      throws Exception {
    Path data = tmp.resolve("d.jsonl");
    Files.write(data, Files.readAllLines(SAMPLE).subList(0, 12));
    try (MistralModel m = MistralModel.load(MODEL, Device.cpu())) {
      Map<Aggregation, TrainingResult> results = new LinkedHashMap<>();
      for (Aggregation a : List.of(Aggregation.median(), Aggregation.trimmedMean(1))) {
        TrainingConfig cfg =
            TrainingConfig.builder()
                .outputDir(tmp.resolve(a.rule().name()))
                .lora(LoraConfig.builder().rank(4).alpha(8).build())
                .learningRate(5e-3)
                .batchSize(1)
                .gradientAccumulation(6)
                .epochs(1)
                .validationFraction(0)
                .maxSeqLength(64)
                .trainOnCompletionsOnly(true)
                .shuffleBuffer(0)
                .seed(3)
                .aggregation(a)
                .injectFaults("nan@1,nan@4")
                .build();
        results.put(a, LoraTrainer.fit(m, Dataset.jsonl(data), cfg, List.of()));
      }
      TrainingResult median = results.get(Aggregation.median());
      assertEquals(2, median.steps());
      assertEquals(0, median.rejectedBatches());
      assertTrue(Double.isFinite(median.finalLoss()), "median: " + median.finalLoss());
      TrainingResult trimmed = results.get(Aggregation.trimmedMean(1));
      assertEquals(0, trimmed.steps());
      assertEquals(12, trimmed.rejectedBatches());
      Path rejected = tmp.resolve(Aggregation.Rule.TRIMMED_MEAN.name()).resolve("rejected.jsonl");
      String lines = Files.readString(rejected);
      assertTrue(
          lines.contains(
              "2 of 6 workers sent gradients that are not finite, more than trimmed-mean:1"
                  + " tolerates"),
          lines);
    }
  }

  @Test
  void robustRulesWithstandOneFaultyWorkerTheMeanDoesNot(@TempDir Path tmp) {
    List<Aggregation> robust =
        List.of(
            Aggregation.median(),
            Aggregation.trimmedMean(1),
            Aggregation.krum(1),
            Aggregation.centeredClip());
    if (!ONLY_RULES.isBlank())
      robust = Arrays.stream(ONLY_RULES.split(";")).map(Aggregation::parse).toList();
    List<String> table = new ArrayList<>();
    List<String> failures = new ArrayList<>();
    try (MistralModel m = MistralModel.load(MODEL, Device.cpu())) {
      long t = System.nanoTime();
      long c0 = cpu();
      int k = 0;
      Map<Aggregation, Double> clean = new LinkedHashMap<>();
      clean.put(Aggregation.mean(), train(m, tmp.resolve("r" + k++), Aggregation.mean(), ""));
      for (Aggregation a : robust) clean.put(a, train(m, tmp.resolve("r" + k++), a, ""));
      clean.forEach(
          (a, v) -> table.add(String.format(Locale.ROOT, "%-16s %-14s %.4f", "clean", a, v)));
      for (Map.Entry<String, String> f : FAULTS.entrySet()) {
        if (!ONLY_FAULTS.isBlank() && !List.of(ONLY_FAULTS.split(";")).contains(f.getKey()))
          continue;
        if (f.getKey().equals("gradient-scale") || f.getKey().equals("alie")) {
          double mean = train(m, tmp.resolve("r" + k++), Aggregation.mean(), f.getValue());
          double d = (mean - clean.get(Aggregation.mean())) / clean.get(Aggregation.mean());
          table.add(
              String.format(
                  Locale.ROOT, "%-16s %-14s %.4f (%+.2f%%)", f.getKey(), "mean", mean, 100 * d));
          if (!(d > 0.50)) failures.add("mean under " + f.getValue() + " shows no damage: " + d);
        }
        for (Aggregation a : robust) {
          double v = train(m, tmp.resolve("r" + k++), a, f.getValue());
          double d = (v - clean.get(a)) / clean.get(a);
          table.add(
              String.format(
                  Locale.ROOT,
                  "%-16s %-14s %.4f (%+.2f%%)%s",
                  f.getKey(),
                  a,
                  v,
                  100 * d,
                  Math.abs(d) > BOUND ? " beyond the target" : ""));
          if (!(Math.abs(d) <= BOUND))
            failures.add(a + " under " + f.getValue() + ": " + d + " (bound " + BOUND + ")");
        }
      }
      table.add(
          String.format(
              Locale.ROOT,
              "%d runs of %d steps (batch %d) in %.1f s, %.1f s cpu",
              k,
              STEPS,
              BATCH,
              (System.nanoTime() - t) / 1e9,
              (cpu() - c0) / 1e9));
    }
    System.out.println(
        "robust aggregation, final validation loss (change against the same rule without faults):\n"
            + "  "
            + String.join("\n  ", table));
    assertTrue(failures.isEmpty(), String.join("; ", failures));
  }
}
