package dev.lora4j.train;

import static org.junit.jupiter.api.Assertions.*;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.lora4j.Batch;
import dev.lora4j.Dataset;
import dev.lora4j.Device;
import dev.lora4j.GuardConfig;
import dev.lora4j.LoraConfig;
import dev.lora4j.LoraTrainer;
import dev.lora4j.MistralModel;
import dev.lora4j.Schedule;
import dev.lora4j.TrainingConfig;
import dev.lora4j.TrainingListener;
import dev.lora4j.TrainingResult;
import dev.lora4j.data.TokenizedExample;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/** The training loop on the tiny reference model (CPU): accumulation, resume, checkpoints. */
class TrainerTest {
  static final Path MODEL = Path.of("src/test/resources/hf-reference/tiny/model");
  static final ObjectMapper JSON = new ObjectMapper();

  /** Pre-tokenized rows of random lengths over a small slice of the vocabulary (learnable). */
  static Path data(Path dir, int n, long seed) throws Exception {
    SplittableRandom r = new SplittableRandom(seed);
    StringBuilder sb = new StringBuilder();
    for (int i = 0; i < n; i++) {
      int len = 6 + r.nextInt(12);
      StringBuilder ids = new StringBuilder();
      int start = 3 + r.nextInt(20);
      for (int t = 0; t < len; t++) {
        if (t > 0) ids.append(',');
        ids.append(3 + (start + t) % 40);
      }
      sb.append("{\"input_ids\":[").append(ids).append("]}\n");
    }
    Path f = dir.resolve("data.jsonl");
    Files.writeString(f, sb);
    return f;
  }

  static TrainingConfig.Builder cfg(Path out) {
    return TrainingConfig.builder()
        .outputDir(out)
        .batchSize(4)
        .learningRate(5e-3)
        .schedule(Schedule.cosine().warmupSteps(2))
        .lora(LoraConfig.builder().rank(4).alpha(8).allLinear().build())
        .shuffleBuffer(16)
        .seed(3)
        .loggingSteps(100);
  }

  @Test
  void lossFallsAndOutputsAreWritten(@TempDir Path tmp) throws Exception {
    Path d = data(tmp, 64, 1);
    try (MistralModel m = MistralModel.load(MODEL, Device.cpu())) {
      TrainingResult r =
          LoraTrainer.fit(
              m,
              Dataset.jsonl(d),
              cfg(tmp.resolve("out")).epochs(4).validationFraction(0.2).evalSteps(10).build(),
              List.of());
      assertTrue(r.finalLoss() < r.firstLoss() * 0.8, r.firstLoss() + " -> " + r.finalLoss());
      assertTrue(Files.isRegularFile(r.adapterDir().resolve("adapter_model.safetensors")));
      assertTrue(Files.size(tmp.resolve("out/loss.png")) > 1000);
      var e = r.finalEvaluation();
      assertNotNull(e);
      assertTrue(e.loss() < e.baseLoss(), "fine-tuned " + e.loss() + " vs base " + e.baseLoss());
      long stepLines = 0;
      for (String line : Files.readAllLines(tmp.resolve("out/metrics.jsonl"))) {
        JsonNode n = JSON.readTree(line);
        if (n.get("type").asText().equals("step")) {
          stepLines++;
          assertEquals(stepLines, n.get("step").asLong());
          assertTrue(n.get("grad_norm").asDouble() > 0);
        }
      }
      assertEquals(r.steps(), stepLines);
    }
  }

  @Test
  void gradientAccumulationGivesTheGradientOfOneBigBatch() {
    SplittableRandom r = new SplittableRandom(5);
    List<TokenizedExample> ex = new ArrayList<>();
    for (int i = 0; i < 4; i++) {
      int[] ids = new int[5 + 3 * i];
      for (int t = 0; t < ids.length; t++) ids[t] = 3 + r.nextInt(500);
      ex.add(new TokenizedExample(ids, null, "row" + i));
    }
    float[][] grads = new float[2][];
    for (int mode = 0; mode < 2; mode++) {
      try (MistralModel m = MistralModel.load(MODEL, Device.cpu())) {
        m.attachAdapter(Path.of("src/test/resources/hf-reference/tiny/adapter_init"));
        m.zeroGrad();
        if (mode == 0) {
          Batch all = Batch.collate(ex, 0);
          m.forwardBackward(all, 1.0 / all.countedTokens());
        } else {
          Batch a = Batch.collate(ex.subList(0, 1), 0), b = Batch.collate(ex.subList(1, 4), 0);
          long total = a.countedTokens() + b.countedTokens();
          m.forwardBackward(a, 1.0 / total);
          m.forwardBackward(b, 1.0 / total);
        }
        grads[mode] = new ArrayList<>(m.gradients().values()).get(3).values();
      }
    }
    double num = 0, den = 0;
    for (int i = 0; i < grads[0].length; i++) {
      num += Math.pow(grads[0][i] - grads[1][i], 2);
      den += Math.pow(grads[0][i], 2);
    }
    assertTrue(den > 0);
    assertTrue(Math.sqrt(num / den) < 1e-5, "accumulated vs big batch " + Math.sqrt(num / den));
  }

  /** Stops a run right after a given checkpoint, as a killed process would. */
  static final class Stop extends RuntimeException {
    Stop() {
      super("stopped");
    }
  }

  @Test
  void anEpochsLastBatchEndsItsStep(@TempDir Path tmp) throws Exception {
    // 40 examples in batches of 4: 10 batches an epoch; 3 to a step: steps of 3, 3, 3 and 1 in
    // each epoch, 12 over 3 epochs as planned (with the batches of a step read across the epoch's
    // end, the run took 10 steps against the 12 it announced and its schedule never ended)
    Path d = data(tmp, 40, 4);
    List<Long> planned = new java.util.concurrent.CopyOnWriteArrayList<>();
    List<Double> epochs = new java.util.concurrent.CopyOnWriteArrayList<>();
    TrainingListener l =
        new TrainingListener() {
          @Override
          public void onTrainBegin(TrainingPlan p) {
            planned.add(p.totalSteps());
          }

          @Override
          public void onStep(StepMetrics m) {
            epochs.add(m.epoch());
          }
        };
    try (MistralModel m = MistralModel.load(MODEL, Device.cpu())) {
      TrainingResult r =
          LoraTrainer.fit(
              m,
              Dataset.jsonl(d),
              cfg(tmp.resolve("out"))
                  .epochs(3)
                  .gradientAccumulation(3)
                  .shuffleBuffer(0)
                  .schedule(Schedule.linear())
                  .build(),
              List.of(l));
      assertEquals(List.of(12L), planned);
      assertEquals(12, r.steps());
    }
    // every fourth step ends an epoch exactly
    for (int e = 1; e <= 3; e++) assertEquals(e, epochs.get(4 * e - 1), 1e-9, epochs.toString());
    assertTrue(epochs.get(2) < 1.0 && epochs.get(4) > 1.0, epochs.toString());
  }

  // grouped by length: the 40 examples of an epoch are one length group, so the checkpoint at
  // step 4 (32 examples) sits inside a group
  @ParameterizedTest(name = "groupByLength {0}")
  @ValueSource(booleans = {false, true})
  void resumedRunEndsBitwiseEqualToTheUninterruptedOne(boolean grouped, @TempDir Path tmp)
      throws Exception {
    Path d = data(tmp, 40, 2);
    byte[] full;
    try (MistralModel m = MistralModel.load(MODEL, Device.cpu())) {
      TrainingResult r =
          LoraTrainer.fit(
              m,
              Dataset.jsonl(d),
              cfg(tmp.resolve("a"))
                  .epochs(2)
                  .gradientAccumulation(2)
                  .groupByLength(grouped)
                  .build(),
              List.of());
      full = Files.readAllBytes(r.adapterDir().resolve("adapter_model.safetensors"));
    }
    Path out = tmp.resolve("b");
    TrainingConfig c =
        cfg(out)
            .epochs(2)
            .gradientAccumulation(2)
            .groupByLength(grouped)
            .saveSteps(2)
            .saveTotalLimit(3)
            .build();
    try (MistralModel m = MistralModel.load(MODEL, Device.cpu())) {
      TrainingListener stopAt4 =
          new TrainingListener() {
            @Override
            public void onCheckpoint(Path dir, long step) {
              if (step == 4) throw new Stop();
            }
          };
      assertThrows(Stop.class, () -> LoraTrainer.fit(m, Dataset.jsonl(d), c, List.of(stopAt4)));
    }
    assertTrue(Files.isDirectory(out.resolve("checkpoint-4")));
    // A checkpoint cut off while being written is ignored.
    Files.createDirectories(out.resolve(".tmp-checkpoint-6"));
    Files.writeString(out.resolve(".tmp-checkpoint-6/adapter_config.json"), "{");
    try (MistralModel m = MistralModel.load(MODEL, Device.cpu())) {
      TrainingResult r =
          LoraTrainer.fit(m, Dataset.jsonl(d), c.toBuilder().resume(true).build(), List.of());
      assertArrayEquals(
          full, Files.readAllBytes(r.adapterDir().resolve("adapter_model.safetensors")));
    }
  }

  /**
   * Resumed from a checkpoint that holds guard retries due next: one written at an epoch's last
   * step (the retries of that epoch run before the next epoch's data) or inside that retry pass,
   * and in the last epoch, whose data is read to its end. A guard this strict (gradient norm above
   * 1.1x the median) rejects several steps of each epoch, so such checkpoints exist; the resumed
   * run must retry what the uninterrupted one retried, when it did, and end with its adapter and
   * its rejected.jsonl. (Before the fix, such a run read the next epoch first, or in the last epoch
   * gave the retries up.)
   */
  @Test
  void resumeRetriesWhatTheUninterruptedRunRetriesNext(@TempDir Path tmp) throws Exception {
    Path d = data(tmp, 96, 5);
    TrainingConfig.Builder b =
        cfg(tmp.resolve("full"))
            .epochs(2)
            .saveSteps(1)
            .saveTotalLimit(1000)
            .guard(GuardConfig.defaults().withGradNormFactor(1.1));
    TrainingResult full;
    try (MistralModel m = MistralModel.load(MODEL, Device.cpu())) {
      full = LoraTrainer.fit(m, Dataset.jsonl(d), b.build(), List.of());
    }
    byte[] fullAdapter = Files.readAllBytes(full.adapterDir().resolve("adapter_model.safetensors"));
    List<String> fullRejected = Files.readAllLines(tmp.resolve("full/rejected.jsonl"));
    // the checkpoints whose retries are due next
    List<Long> due = new ArrayList<>();
    int lastDueEpoch = -1;
    for (long k = 1; k < full.steps(); k++) {
      JsonNode st =
          JSON.readTree(tmp.resolve("full/checkpoint-" + k + "/trainer_state.json").toFile());
      int epoch = st.path("data_position").path("epoch").asInt();
      for (JsonNode r : st.path("pending_retries"))
        if (r.path("from").path("epoch").asInt() < epoch) {
          due.add(k);
          lastDueEpoch = epoch;
          break;
        }
    }
    assertTrue(
        due.size() >= 2,
        "checkpoints with retries due next: " + due + " (" + full.skippedSteps() + " skipped)");
    assertEquals(2, lastDueEpoch, "the last of them after the last epoch's data");
    // the first such checkpoint, and the last (in the last epoch's retry pass or just before it)
    for (long k : List.of(due.get(0), due.get(due.size() - 1))) {
      Path out = tmp.resolve("cut-" + k);
      TrainingConfig c = b.outputDir(out).build();
      try (MistralModel m = MistralModel.load(MODEL, Device.cpu())) {
        TrainingListener stop =
            new TrainingListener() {
              @Override
              public void onCheckpoint(Path dir, long step) {
                if (step == k) throw new Stop();
              }
            };
        assertThrows(Stop.class, () -> LoraTrainer.fit(m, Dataset.jsonl(d), c, List.of(stop)));
      }
      try (MistralModel m = MistralModel.load(MODEL, Device.cpu())) {
        TrainingResult r =
            LoraTrainer.fit(m, Dataset.jsonl(d), c.toBuilder().resume(true).build(), List.of());
        assertEquals(full.steps(), r.steps(), "steps, resumed at " + k);
        assertArrayEquals(
            fullAdapter,
            Files.readAllBytes(r.adapterDir().resolve("adapter_model.safetensors")),
            "adapter, resumed at " + k);
        assertEquals(
            fullRejected, Files.readAllLines(out.resolve("rejected.jsonl")), "rejected, at " + k);
      }
    }
  }

  @Test
  void aStartingAdaptersLoraDropoutIsNotSilentlyDropped(@TempDir Path tmp) throws Exception {
    // lora4j trains without LoRA dropout: an adapter that asks for it trains, with a warning
    Path src = Path.of("src/test/resources/hf-reference/tiny/adapter_trained");
    Path adapter = Files.createDirectories(tmp.resolve("adapter"));
    for (String f : List.of("adapter_config.json", "adapter_model.safetensors"))
      Files.copy(src.resolve(f), adapter.resolve(f));
    Path conf = adapter.resolve("adapter_config.json");
    String text = Files.readString(conf);
    assertTrue(text.contains("\"lora_dropout\": 0.0"), text);
    Files.writeString(conf, text.replace("\"lora_dropout\": 0.0", "\"lora_dropout\": 0.05"));
    Path d = data(tmp, 8, 1);
    try (MistralModel m = MistralModel.load(MODEL, Device.cpu())) {
      TrainingResult r =
          LoraTrainer.fit(
              m,
              Dataset.jsonl(d),
              cfg(tmp.resolve("out")).initAdapter(adapter).maxSteps(1).build(),
              List.of());
      assertTrue(
          r.warnings().stream()
              .anyMatch(w -> w.contains("sets lora_dropout 0.05") && w.contains("without LoRA")),
          r.warnings().toString());
      // and the adapter it writes says what was done: dropout 0.0, trained on this model (the
      // starting adapter's base_model_name_or_path named another)
      JsonNode written = JSON.readTree(r.adapterDir().resolve("adapter_config.json").toFile());
      assertEquals(0.0, written.get("lora_dropout").asDouble(), written.toString());
      assertEquals(
          MODEL.toAbsolutePath().normalize().toString(),
          written.get("base_model_name_or_path").asText(),
          written.toString());
      TrainingResult plain =
          LoraTrainer.fit(
              m,
              Dataset.jsonl(d),
              cfg(tmp.resolve("out2")).initAdapter(src).maxSteps(1).build(),
              List.of());
      assertTrue(
          plain.warnings().stream().noneMatch(w -> w.contains("lora_dropout")),
          plain.warnings().toString());
    }
  }

  @Test
  void completionsOnlyThatMasksNothingSaysSo(@TempDir Path tmp) throws Exception {
    // input_ids without labels have no prompt: completions-only changes nothing, and says so
    Path plain = data(tmp, 8, 1);
    Path masked = tmp.resolve("masked.jsonl");
    Files.writeString(
        masked, "{\"input_ids\":[5,6,7,8,9],\"labels\":[-100,-100,7,8,9]}\n".repeat(8));
    try (MistralModel m = MistralModel.load(MODEL, Device.cpu())) {
      for (Path d : List.of(plain, masked)) {
        TrainingResult r =
            LoraTrainer.fit(
                m,
                Dataset.jsonl(d),
                cfg(tmp.resolve("out-" + d.getFileName()))
                    .trainOnCompletionsOnly(true)
                    .maxSteps(1)
                    .build(),
                List.of());
        assertEquals(
            d == plain,
            r.warnings().stream().anyMatch(w -> w.contains("masked nothing")),
            d + ": " + r.warnings());
      }
    }
  }

  /** A listener that holds the run in its first step until released. */
  static final class Hold implements TrainingListener {
    final java.util.concurrent.CountDownLatch inStep = new java.util.concurrent.CountDownLatch(1);
    final java.util.concurrent.CountDownLatch release = new java.util.concurrent.CountDownLatch(1);

    @Override
    public void onStep(StepMetrics m) {
      inStep.countDown();
      try {
        release.await();
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
      }
    }
  }

  @Test
  void oneRunAtATimePerModelAndPerOutputFolder(@TempDir Path tmp) throws Exception {
    // a second fit on a model that is training, or into a folder another run holds, is refused
    // (before: the two interleaved their engine calls, or their metrics.jsonl lines and adapters)
    Path d = data(tmp, 16, 1);
    try (MistralModel m = MistralModel.load(MODEL, Device.cpu());
        MistralModel other = MistralModel.load(MODEL, Device.cpu())) {
      Hold hold = new Hold();
      java.util.concurrent.atomic.AtomicReference<Throwable> failed =
          new java.util.concurrent.atomic.AtomicReference<>();
      Thread first =
          new Thread(
              () -> {
                try {
                  LoraTrainer.fit(
                      m,
                      Dataset.jsonl(d),
                      cfg(tmp.resolve("a")).maxSteps(2).build(),
                      List.of(hold));
                } catch (Throwable t) {
                  failed.set(t);
                }
              });
      first.start();
      assertTrue(hold.inStep.await(60, java.util.concurrent.TimeUnit.SECONDS));
      try {
        IllegalStateException busy =
            assertThrows(
                IllegalStateException.class,
                () ->
                    LoraTrainer.fit(
                        m, Dataset.jsonl(d), cfg(tmp.resolve("b")).maxSteps(1).build(), List.of()));
        assertTrue(busy.getMessage().contains("already training"), busy.getMessage());
        assertFalse(Files.exists(tmp.resolve("b")));
        dev.lora4j.Lora4jException taken =
            assertThrows(
                dev.lora4j.Lora4jException.class,
                () ->
                    LoraTrainer.fit(
                        other,
                        Dataset.jsonl(d),
                        cfg(tmp.resolve("a")).maxSteps(1).overwriteOutput(true).build(),
                        List.of()));
        assertTrue(taken.getMessage().contains("in use by another run"), taken.getMessage());
        // with overwrite it would have deleted the running run's files
        assertTrue(Files.isRegularFile(tmp.resolve("a/metrics.jsonl")));
      } finally {
        hold.release.countDown();
        first.join();
      }
      assertNull(failed.get());
      // once the first run is over, the model trains again
      LoraTrainer.fit(m, Dataset.jsonl(d), cfg(tmp.resolve("c")).maxSteps(1).build(), List.of());
    }
  }

  @Test
  void theAdapterIsWrittenBeforeTheFinalEvaluation(@TempDir Path tmp) throws Exception {
    // a listener that fails at the final evaluation no longer costs the trained adapter
    Path d = data(tmp, 16, 1);
    TrainingListener failsAtEval =
        new TrainingListener() {
          @Override
          public void onEvaluate(Evaluation e) {
            throw new Stop();
          }
        };
    try (MistralModel m = MistralModel.load(MODEL, Device.cpu())) {
      assertThrows(
          Stop.class,
          () ->
              LoraTrainer.fit(
                  m,
                  Dataset.jsonl(d),
                  cfg(tmp.resolve("out")).maxSteps(2).validationFraction(0.25).build(),
                  List.of(failsAtEval)));
    }
    assertTrue(Files.isRegularFile(tmp.resolve("out/adapter/adapter_model.safetensors")));
  }

  @Test
  void aFinishedRunResumedEvaluatesItsLastStepOnce(@TempDir Path tmp) throws Exception {
    // its last checkpoint (step 4) was written before the final evaluation; the evaluation is
    // recorded into it afterwards, so resumed the run reports it and writes no second line
    Path d = data(tmp, 24, 1);
    TrainingConfig c =
        cfg(tmp.resolve("out")).maxSteps(4).saveSteps(2).validationFraction(0.25).build();
    double first;
    try (MistralModel m = MistralModel.load(MODEL, Device.cpu())) {
      first = LoraTrainer.fit(m, Dataset.jsonl(d), c, List.of()).finalEvaluation().loss();
    }
    assertNull(CheckpointStore.verify(tmp.resolve("out/checkpoint-4")));
    assertEquals(
        4, CheckpointStore.readState(tmp.resolve("out/checkpoint-4")).evaluations().get(0).step());
    List<Long> evaluated = new ArrayList<>();
    TrainingListener l =
        new TrainingListener() {
          @Override
          public void onEvaluate(Evaluation e) {
            evaluated.add(e.step());
          }
        };
    try (MistralModel m = MistralModel.load(MODEL, Device.cpu())) {
      TrainingResult r =
          LoraTrainer.fit(m, Dataset.jsonl(d), c.toBuilder().resume(true).build(), List.of(l));
      assertEquals(first, r.finalEvaluation().loss());
      assertEquals(4, r.finalEvaluation().step());
    }
    assertEquals(List.of(), evaluated);
    long evalLines = 0;
    for (String line : Files.readAllLines(tmp.resolve("out/metrics.jsonl"))) {
      if (JSON.readTree(line).get("type").asText().equals("eval")) evalLines++;
    }
    assertEquals(1, evalLines);
  }

  @Test
  void aProgressLineGivesTheMeanLossSinceTheLastLine() {
    // as Hugging Face's Trainer logs the loss over its logging window (it gave the last step's)
    java.io.ByteArrayOutputStream bytes = new java.io.ByteArrayOutputStream();
    ProgressListener p =
        new ProgressListener(
            new java.io.PrintStream(bytes, true, java.nio.charset.StandardCharsets.UTF_8),
            false,
            2);
    double[] losses = {1, 3, 5, 7};
    for (int s = 1; s <= 4; s++) {
      p.onStep(new TrainingListener.StepMetrics(s, 0.5, losses[s - 1], 1.0, 1e-4, 10, 100, s, 0));
    }
    List<String> lines = bytes.toString(java.nio.charset.StandardCharsets.UTF_8).lines().toList();
    assertEquals(3, lines.size(), lines.toString());
    assertTrue(lines.get(0).contains("step 1/0  loss 1.0000"), lines.get(0));
    assertTrue(lines.get(1).contains("step 2/0  loss 3.0000"), lines.get(1));
    assertTrue(lines.get(2).contains("step 4/0  loss 6.0000"), lines.get(2));
  }

  @Test
  void theDefaultProgressFollowsLoggingSteps(@TempDir Path tmp) throws Exception {
    Path d = data(tmp, 16, 1);
    java.io.PrintStream old = System.err;
    java.io.ByteArrayOutputStream err = new java.io.ByteArrayOutputStream();
    System.setErr(new java.io.PrintStream(err, true, java.nio.charset.StandardCharsets.UTF_8));
    try (MistralModel m = MistralModel.load(MODEL, Device.cpu())) {
      LoraTrainer.fit(
          m, Dataset.jsonl(d), cfg(tmp.resolve("out")).maxSteps(4).loggingSteps(1).build());
    } finally {
      System.setErr(old);
    }
    String said = err.toString(java.nio.charset.StandardCharsets.UTF_8);
    for (int k = 1; k <= 4; k++) assertTrue(said.contains("step " + k + "/4"), said);
    // the test's standard error is a pipe: log lines, not a redrawn bar
    assertFalse(dev.lora4j.train.ProgressListener.stderrIsTerminal());
    assertFalse(said.contains("\r"), said);
  }

  @Test
  void groupByLengthWithPackingIsRefused(@TempDir Path tmp) {
    IllegalArgumentException e =
        assertThrows(
            IllegalArgumentException.class,
            () -> cfg(tmp).packing(true).groupByLength(true).build());
    assertTrue(e.getMessage().contains("groupByLength(true) and packing(true)"), e.getMessage());
  }

  @Test
  void damagedLatestCheckpointFallsBackToThePreviousOne(@TempDir Path tmp) throws Exception {
    Path d = data(tmp, 24, 4);
    Path out = tmp.resolve("o");
    TrainingConfig c = cfg(out).maxSteps(4).saveSteps(2).saveTotalLimit(3).build();
    try (MistralModel m = MistralModel.load(MODEL, Device.cpu())) {
      LoraTrainer.fit(m, Dataset.jsonl(d), c, List.of());
    }
    Path latest = out.resolve("checkpoint-4/adapter_model.safetensors");
    byte[] b = Files.readAllBytes(latest);
    b[b.length - 1] ^= 0x40;
    Files.write(latest, b);
    assertNotNull(CheckpointStore.verify(out.resolve("checkpoint-4")));
    assertNull(CheckpointStore.verify(out.resolve("checkpoint-2")));
    try (MistralModel m = MistralModel.load(MODEL, Device.cpu())) {
      TrainerState s = new CheckpointStore(out, 3).loadLatest(m);
      assertEquals(2, s.step());
    }
  }

  @Test
  void scheduleMatchesHuggingFace() {
    Schedule cos = Schedule.cosine().warmupSteps(10);
    assertEquals(0.0, cos.factor(0, 100));
    assertEquals(0.5, cos.factor(5, 100), 1e-12);
    assertEquals(1.0, cos.factor(10, 100), 1e-12);
    assertEquals(0.5, cos.factor(55, 100), 1e-12);
    Schedule lin = Schedule.linear();
    assertEquals(1.0, lin.factor(0, 10), 1e-12);
    assertEquals(0.5, lin.factor(5, 10), 1e-12);
    assertEquals(1.0, Schedule.constant().factor(7, 10));
  }

  @Test
  void guardRejectsOutliersAndNonFinite() {
    PoisonGuard g = new PoisonGuard(GuardConfig.defaults(), List.of(), 0);
    assertNotNull(g.check(Double.NaN, 1));
    assertNotNull(g.check(1, Double.POSITIVE_INFINITY));
    for (int i = 0; i < 8; i++) {
      assertNull(g.check(2.0, 1.0));
      g.accept(2.0, 1.0);
    }
    assertNotNull(g.check(6.5, 1.0));
    assertNotNull(g.check(2.0, 10.5));
    assertNull(g.check(5.9, 9.0));
    g.accept(5.9, 9.0);
    // Three outliers in a row: the third is rejected, the fourth applied (the regime moved).
    assertNotNull(g.check(2.0, 60.0));
    assertNotNull(g.check(2.0, 60.0));
    assertNotNull(g.check(2.0, 60.0));
    assertEquals(3, g.consecutiveRejections());
    assertNull(g.check(2.0, 60.0));
    g.accept(2.0, 60.0);
    assertEquals(0, g.consecutiveRejections());
    PoisonGuard off = new PoisonGuard(GuardConfig.off(), List.of(), 0);
    for (int i = 0; i < 8; i++) off.accept(2.0, 1.0);
    assertNull(off.check(100.0, 100.0));
  }

  @Test
  void unwritableOutputFolderIsAClearError(@TempDir Path tmp) throws Exception {
    Path d = data(tmp, 8, 1);
    Path file = tmp.resolve("not-a-folder");
    Files.writeString(file, "x");
    try (MistralModel m = MistralModel.load(MODEL, Device.cpu())) {
      var e =
          assertThrows(
              dev.lora4j.Lora4jException.class,
              () ->
                  LoraTrainer.fit(
                      m, Dataset.jsonl(d), cfg(file.resolve("out")).build(), List.of()));
      assertTrue(e.getMessage().contains("not-a-folder"), e.getMessage());
    }
  }
}
