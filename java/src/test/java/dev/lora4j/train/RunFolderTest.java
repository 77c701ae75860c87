package dev.lora4j.train;

import static org.junit.jupiter.api.Assertions.*;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.lora4j.Dataset;
import dev.lora4j.Device;
import dev.lora4j.DistributedConfig;
import dev.lora4j.Lora4jException;
import dev.lora4j.LoraConfig;
import dev.lora4j.LoraTrainer;
import dev.lora4j.MistralModel;
import dev.lora4j.TrainingConfig;
import dev.lora4j.TrainingResult;
import dev.lora4j.model.MergedExport;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The Java API's side of issue 13: the same rules as the command line. */
class RunFolderTest {
  static final Path MODEL = TrainerTest.MODEL;
  static final Path ADAPTER = Path.of("src/test/resources/hf-reference/tiny/adapter_trained");

  static Map<String, Long> sizes(Path dir) throws Exception {
    Map<String, Long> m = new TreeMap<>();
    try (Stream<Path> s = Files.walk(dir)) {
      for (Path p : s.filter(Files::isRegularFile).toList()) {
        m.put(dir.relativize(p) + " " + CheckpointStore.sha256(p), Files.size(p));
      }
    }
    return m;
  }

  @Test
  void aSecondFitIntoTheSameFolderIsRefusedUnlessOverwriteOrResume(@TempDir Path tmp)
      throws Exception {
    Path d = TrainerTest.data(tmp, 16, 1);
    Path out = tmp.resolve("out");
    TrainingConfig c = TrainerTest.cfg(out).maxSteps(2).build();
    try (MistralModel m = MistralModel.load(MODEL, Device.cpu())) {
      LoraTrainer.fit(m, Dataset.jsonl(d), c, List.of());
      var before = sizes(out);
      Lora4jException e =
          assertThrows(
              Lora4jException.class, () -> LoraTrainer.fit(m, Dataset.jsonl(d), c, List.of()));
      assertTrue(
          e.getMessage().contains("holds an earlier run")
              && e.getMessage().contains("overwriteOutput(true)")
              && e.getMessage().contains("resume(true)"),
          e.getMessage());
      assertEquals(before, sizes(out));
      Lora4jException both =
          assertThrows(
              Lora4jException.class,
              () ->
                  LoraTrainer.fit(
                      m,
                      Dataset.jsonl(d),
                      c.toBuilder().resume(true).overwriteOutput(true).build(),
                      List.of()));
      assertTrue(both.getMessage().contains("exclude each other"), both.getMessage());
      TrainingResult r =
          LoraTrainer.fit(
              m, Dataset.jsonl(d), c.toBuilder().overwriteOutput(true).build(), List.of());
      assertEquals(2, r.steps());
    }
  }

  @Test
  void aTrainerStateThatDoesNotPlaceTheRunNamesItsKey(@TempDir Path tmp) throws Exception {
    TrainerState ok =
        new TrainerState(
            8,
            12,
            new dev.lora4j.data.DataPosition(0, 16),
            0,
            List.of(new double[] {1.5, 0.25}),
            0,
            List.of(),
            List.of(),
            0);
    String json = CheckpointStore.stateJson(ok, null);
    assertEquals(8, CheckpointStore.parseState(json).step());
    Map<String, String> bad = new java.util.LinkedHashMap<>();
    bad.put("\"step\" : \"eight\"", "key 'step' must be a whole number, got \"eight\"");
    bad.put("\"step\" : null", "key 'step' must be a whole number, got null");
    bad.put("\"step\" : 50", "key 'step' is 50, past key 'total_steps' (12)");
    bad.put("\"step\" : -3", "key 'step' must be at least 0, got -3");
    bad.put("\"step\" : 8.7", "key 'step' must be a whole number, got 8.7");
    for (Map.Entry<String, String> e : bad.entrySet()) {
      String broken =
          json.replaceFirst("\"step\" : 8", java.util.regex.Matcher.quoteReplacement(e.getKey()));
      assertNotEquals(json, broken);
      Path dir = Files.createDirectories(tmp.resolve("c" + Math.abs(e.getKey().hashCode())));
      Files.writeString(dir.resolve("trainer_state.json"), broken);
      Lora4jException x = assertThrows(Lora4jException.class, () -> CheckpointStore.readState(dir));
      assertEquals(dir.resolve("trainer_state.json") + ": " + e.getValue(), x.getMessage());
    }
    String noPosition = json.replaceFirst("\"data_position\"", "\"position\"");
    assertTrue(
        assertThrows(IOException.class, () -> CheckpointStore.parseState(noPosition))
            .getMessage()
            .contains("key 'data_position' must be an object"));
    String history =
        json.replaceFirst("\"guard_history\" : \\[[^]]*\\]\\s*\\]", "\"guard_history\" : {}");
    assertNotEquals(json, history);
    assertTrue(
        assertThrows(IOException.class, () -> CheckpointStore.parseState(history))
            .getMessage()
            .contains("key 'guard_history'"));
  }

  @Test
  void aUsersFilesNamedLikeCheckpointsAreNotTheRuns(@TempDir Path tmp) throws Exception {
    Path out = Files.createDirectories(tmp.resolve("out"));
    Files.createDirectories(out.resolve("checkpoint-best"));
    Files.writeString(out.resolve("checkpoint-notes.txt"), "mine");
    Files.createDirectories(out.resolve("checkpoint-4.bak"));
    // not an earlier run: nothing of the run's own is there
    assertEquals(List.of(), RunFolder.runFiles(out));
    Files.createDirectories(out.resolve("checkpoint-8"));
    Files.createDirectories(out.resolve(".tmp-checkpoint-12"));
    assertEquals(
        List.of(out.resolve(".tmp-checkpoint-12"), out.resolve("checkpoint-8")),
        RunFolder.runFiles(out));
    // overwriting deletes the run's checkpoints only
    RunFolder.prepare(out, MODEL, null, List.of(), false, true, true);
    try (Stream<Path> s = Files.list(out)) {
      assertEquals(
          List.of("checkpoint-4.bak", "checkpoint-best", "checkpoint-notes.txt"),
          s.map(p -> p.getFileName().toString()).sorted().toList());
    }
  }

  @Test
  void anEarlierRunsRejectedBatchesAreItsFiles(@TempDir Path tmp) throws Exception {
    Path d = TrainerTest.data(tmp, 16, 1);
    Path out = Files.createDirectories(tmp.resolve("out"));
    String earlier = "{\"step\":3,\"reason\":\"loss\"}\n";
    Files.writeString(out.resolve("rejected.jsonl"), earlier);
    TrainingConfig c = TrainerTest.cfg(out).maxSteps(2).build();
    try (MistralModel m = MistralModel.load(MODEL, Device.cpu())) {
      Lora4jException e =
          assertThrows(
              Lora4jException.class, () -> LoraTrainer.fit(m, Dataset.jsonl(d), c, List.of()));
      assertTrue(e.getMessage().contains("holds an earlier run"), e.getMessage());
      assertEquals(earlier, Files.readString(out.resolve("rejected.jsonl")));
      LoraTrainer.fit(m, Dataset.jsonl(d), c.toBuilder().overwriteOutput(true).build(), List.of());
      // deleted with the rest of the earlier run: this run rejected nothing
      assertFalse(Files.exists(out.resolve("rejected.jsonl")));
    }
  }

  @Test
  void aResumedRunKeepsTheRejectionsItsCheckpointCounted(@TempDir Path tmp) throws Exception {
    Path out = Files.createDirectories(tmp.resolve("out"));
    Path f = out.resolve("rejected.jsonl");
    String kept = "{\"step\":1}\n{\"step\":1}\n{\"step\":4}\n";
    // two lines written after the checkpoint, and one cut by a kill
    Files.writeString(f, kept + "{\"step\":7}\n{\"step\":7}\n{\"ste");
    assertEquals(3, RunFolder.keepRejected(out, 3));
    assertEquals(kept, Files.readString(f));
    assertEquals(0, RunFolder.keepRejected(out, 3));
    assertEquals(0, RunFolder.keepRejected(out, 5));
    assertEquals(kept, Files.readString(f));
    assertEquals(3, RunFolder.keepRejected(out, 0));
    assertEquals("", Files.readString(f));
    assertEquals(0, RunFolder.keepRejected(tmp.resolve("none"), 0));
    try (Stream<Path> s = Files.list(out)) {
      assertEquals(List.of("rejected.jsonl"), s.map(p -> p.getFileName().toString()).toList());
    }
  }

  @Test
  void aTrainingOutputInsideTheModelFolderIsRefused(@TempDir Path tmp) throws Exception {
    Path d = TrainerTest.data(tmp, 8, 1);
    try (MistralModel m = MistralModel.load(MODEL, Device.cpu())) {
      Lora4jException e =
          assertThrows(
              Lora4jException.class,
              () ->
                  LoraTrainer.fit(
                      m,
                      Dataset.jsonl(d),
                      TrainerTest.cfg(MODEL.resolve("run")).build(),
                      List.of()));
      assertTrue(e.getMessage().contains("is inside the model folder"), e.getMessage());
      assertFalse(Files.exists(MODEL.resolve("run")));
    }
  }

  @Test
  void saveAdapterAndMergeRefuseInputsAndNonEmptyFolders(@TempDir Path tmp) throws Exception {
    try (MistralModel m = MistralModel.load(MODEL, Device.cpu())) {
      m.attachAdapter(ADAPTER);
      for (Path bad : List.of(MODEL, MODEL.resolve("adapter"), ADAPTER)) {
        assertThrows(Lora4jException.class, () -> m.saveAdapter(bad, true), bad.toString());
      }
      m.attachNewAdapter(LoraConfig.builder().rank(2).build(), 1);
      Path out = Files.createDirectories(tmp.resolve("a"));
      Files.writeString(out.resolve("other.txt"), "x");
      Lora4jException e = assertThrows(Lora4jException.class, () -> m.saveAdapter(out));
      assertTrue(e.getMessage().contains("not empty"), e.getMessage());
      m.saveAdapter(out, true);
      try (var s = Files.list(out)) {
        assertEquals(
            List.of("adapter_config.json", "adapter_model.safetensors"),
            s.map(p -> p.getFileName().toString()).sorted().toList());
      }
    }
    Lora4jException e =
        assertThrows(Lora4jException.class, () -> MergedExport.write(MODEL, ADAPTER, MODEL, true));
    assertTrue(e.getMessage().contains("is the model folder"), e.getMessage());
  }

  @Test
  void settingsWrittenBeforeGroupingExistedReadAsUngrouped() throws Exception {
    ObjectMapper json = new ObjectMapper();
    RunSettings old = RunSettings.read(json.readTree("{\"packing\": \"false\"}"));
    RunSettings grouped =
        RunSettings.read(json.readTree("{\"packing\": \"false\", \"group_by_length\": \"true\"}"));
    assertEquals(
        List.of(RunSettings.Setting.GROUP_BY_LENGTH),
        old.differences(grouped).stream().map(RunSettings.Difference::setting).toList());
    RunSettings plain =
        RunSettings.read(json.readTree("{\"packing\": \"false\", \"group_by_length\": \"false\"}"));
    assertTrue(old.differences(plain).isEmpty());
    String msg =
        RunSettings.MismatchException.message(Path.of("ck"), old.differences(grouped), true);
    assertTrue(
        msg.contains("grouping by length (--group-by-length): false in the checkpoint, true now"),
        msg);
  }

  @Test
  void theWorldSizeIsRecordedAndFixed(@TempDir Path tmp) throws Exception {
    Path d = TrainerTest.data(tmp, 8, 1);
    TrainingConfig one = TrainerTest.cfg(tmp.resolve("out")).maxSteps(4).build();
    TrainingConfig two =
        one.toBuilder()
            .distributed(
                new DistributedConfig(2, 0, 0, "127.0.0.1", DistributedConfig.DEFAULT_PORT))
            .build();
    RunSettings a = RunSettings.of(two, MODEL, d, 4, 0), b = RunSettings.of(one, MODEL, d, 4, 0);
    assertEquals("2", a.get(RunSettings.Setting.WORLD_SIZE));
    assertTrue(RunSettings.Setting.WORLD_SIZE.fixed());
    // the same steps and accumulation per rank, another group: a different global batch
    List<RunSettings.Difference> diff = a.differences(b);
    assertEquals(
        List.of(RunSettings.Setting.WORLD_SIZE),
        diff.stream().map(RunSettings.Difference::setting).toList());
    String msg = RunSettings.MismatchException.message(Path.of("ck"), diff, true);
    assertTrue(
        msg.contains(
            "ranks in the group (world size) (--nproc-per-node/--nnodes/WORLD_SIZE): 2 in the"
                + " checkpoint, 1 now"),
        msg);
    // a checkpoint written before the setting existed does not record it: not compared
    ObjectNode old = new ObjectMapper().createObjectNode();
    a.writeTo(old);
    old.remove("world_size");
    assertTrue(RunSettings.read(old).differences(b).isEmpty());
  }

  /** Trains 4 steps on d into out with a checkpoint every 2; returns the run's configuration. */
  static TrainingConfig fourStepsCheckpointed(Path d, Path out) throws Exception {
    TrainingConfig c = TrainerTest.cfg(out).maxSteps(4).saveSteps(2).build();
    try (MistralModel m = MistralModel.load(MODEL, Device.cpu())) {
      LoraTrainer.fit(m, Dataset.jsonl(d), c, List.of());
    }
    return c;
  }

  // A run started without a starting adapter, on 16-bit weights: resuming it with an adapter, or
  // with the projections held in 4 bits, would train another function (the adapter is taken from
  // the checkpoint either way, the 4-bit base changes every product): both are refused by name.
  @Test
  void aResumeWithAnAdapterOrFourBitWeightsIsRefused(@TempDir Path tmp) throws Exception {
    Path d = TrainerTest.data(tmp, 24, 2);
    Path out = tmp.resolve("out");
    TrainingConfig c = fourStepsCheckpointed(d, out);
    Path adapter = MODEL.resolveSibling("adapter_init");
    TrainingConfig withAdapter = c.toBuilder().initAdapter(adapter).resume(true).build();
    try (MistralModel m = MistralModel.load(MODEL, Device.cpu())) {
      Lora4jException e =
          assertThrows(
              Lora4jException.class,
              () -> LoraTrainer.fit(m, Dataset.jsonl(d), withAdapter, List.of()));
      assertTrue(
          e.getMessage()
              .contains("starting adapter (SHA-256 of its weights) (initAdapter): none in"),
          e.getMessage());
    }
    try (MistralModel m = MistralModel.load(MODEL, Device.cpu(), dev.lora4j.Quantization.nf4())) {
      assertTrue(m.nf4Projections() > 0);
      Lora4jException e =
          assertThrows(
              Lora4jException.class,
              () ->
                  LoraTrainer.fit(
                      m, Dataset.jsonl(d), c.toBuilder().resume(true).build(), List.of()));
      assertTrue(
          e.getMessage()
              .contains(
                  "projection weights held in 4-bit NF4 (LoadOptions.quantization): 0 in the"
                      + " checkpoint, "
                      + m.nf4Projections()
                      + " now"),
          e.getMessage());
    }
    // the same settings resume
    try (MistralModel m = MistralModel.load(MODEL, Device.cpu())) {
      assertEquals(
          4,
          LoraTrainer.fit(m, Dataset.jsonl(d), c.toBuilder().resume(true).build(), List.of())
              .steps());
    }
  }

  @Test
  void aDamagedCheckpointIsRefusedAsAnAdapter(@TempDir Path tmp) throws Exception {
    Path d = TrainerTest.data(tmp, 24, 2);
    Path out = tmp.resolve("out");
    fourStepsCheckpointed(d, out);
    Path ck = out.resolve("checkpoint-4"), w = ck.resolve("adapter_model.safetensors");
    try (MistralModel m = MistralModel.load(MODEL, Device.cpu())) {
      m.attachAdapter(ck); // intact: taken
      m.detachAdapter();
      byte[] b = Files.readAllBytes(w);
      b[b.length - 3] ^= 0x01; // a finite value changed by one bit
      Files.write(w, b);
      Lora4jException e = assertThrows(Lora4jException.class, () -> m.attachAdapter(ck));
      assertTrue(
          e.getMessage().contains("fail its manifest.json")
              && e.getMessage().contains("adapter_model.safetensors"),
          e.getMessage());
      assertNull(m.adapterConfig());
    }
  }

  /** Edits a checkpoint's trainer_state.json and its manifest entry to match. */
  static void editState(Path ck, java.util.function.Consumer<ObjectNode> edit) throws Exception {
    ObjectMapper json = new ObjectMapper();
    Path f = ck.resolve("trainer_state.json");
    ObjectNode state = (ObjectNode) json.readTree(f.toFile());
    edit.accept(state);
    Files.writeString(f, json.writeValueAsString(state));
    ObjectNode manifest = (ObjectNode) json.readTree(ck.resolve("manifest.json").toFile());
    ((ObjectNode) manifest.get("files").get("trainer_state.json"))
        .put("size", Files.size(f))
        .put("sha256", CheckpointStore.sha256(f));
    Files.writeString(ck.resolve("manifest.json"), json.writeValueAsString(manifest));
  }

  @Test
  void aRecordThatLacksASettingSaysItWasNotCompared(@TempDir Path tmp) throws Exception {
    Path d = TrainerTest.data(tmp, 24, 2);
    Path out = tmp.resolve("out");
    TrainingConfig c = fourStepsCheckpointed(d, out);
    editState(
        out.resolve("checkpoint-4"), s -> ((ObjectNode) s.get("run_settings")).remove("seed"));
    try (MistralModel m = MistralModel.load(MODEL, Device.cpu())) {
      TrainingResult r =
          LoraTrainer.fit(
              m, Dataset.jsonl(d), c.toBuilder().resume(true).seed(99).build(), List.of());
      assertEquals(4, r.steps());
      assertTrue(
          r.warnings().stream()
              .anyMatch(
                  w -> w.contains("does not record seed (seed)") && w.contains("not compared")),
          r.warnings().toString());
    }
  }

  @Test
  void aCheckpointWithoutARecordResumesCheckingWhatItCan(@TempDir Path tmp) throws Exception {
    Path d = TrainerTest.data(tmp, 24, 2);
    Path out = tmp.resolve("out");
    TrainingConfig c = fourStepsCheckpointed(d, out);
    // As an earlier lora4j wrote it: no run_settings, manifest to match.
    Path ck = out.resolve("checkpoint-4");
    editState(
        ck,
        s -> {
          assertTrue(s.has("run_settings"));
          s.remove("run_settings");
        });
    assertNull(CheckpointStore.verify(ck));
    assertNull(CheckpointStore.readSettings(ck));

    try (MistralModel m = MistralModel.load(MODEL, Device.cpu())) {
      TrainingConfig rank8 =
          c.toBuilder()
              .resume(true)
              .lora(LoraConfig.builder().rank(8).alpha(8).allLinear().build())
              .build();
      RunSettings.MismatchException e =
          assertThrows(
              RunSettings.MismatchException.class,
              () -> LoraTrainer.fit(m, Dataset.jsonl(d), rank8, List.of()));
      assertEquals(
          List.of(RunSettings.Setting.LORA_RANK),
          e.differences().stream().map(RunSettings.Difference::setting).toList());
      TrainingResult r =
          LoraTrainer.fit(m, Dataset.jsonl(d), c.toBuilder().resume(true).build(), List.of());
      assertEquals(4, r.steps());
      assertTrue(
          r.warnings().stream().anyMatch(w -> w.contains("does not record the run's settings")),
          r.warnings().toString());
    }
  }
}
