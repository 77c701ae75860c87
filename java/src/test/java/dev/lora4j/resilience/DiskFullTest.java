package dev.lora4j.resilience;

import static org.junit.jupiter.api.Assertions.*;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import dev.lora4j.Dataset;
import dev.lora4j.Device;
import dev.lora4j.Lora4jException;
import dev.lora4j.LoraConfig;
import dev.lora4j.LoraTrainer;
import dev.lora4j.MistralModel;
import dev.lora4j.TrainingConfig;
import dev.lora4j.data.DataFormat;
import dev.lora4j.train.CheckpointStore;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A disk that fills up while a checkpoint is written: a clear error, and the previous checkpoint
 * stays intact and usable. The full disk is a small tmpfs, mounted where the test may (root on
 * Linux); elsewhere the test is skipped and says why.
 */
class DiskFullTest {
  static final Path MODEL = Path.of("src/test/resources/hf-reference/tiny/model");

  static int sh(String... cmd) throws Exception {
    return new ProcessBuilder(cmd).redirectErrorStream(true).redirectOutput(ProcessBuilder.Redirect.DISCARD).start().waitFor();
  }

  @Test
  void fullDiskWhileCheckpointingKeepsThePreviousCheckpoint(@TempDir Path tmp) throws Exception {
    Path mnt = tmp.resolve("small-disk");
    Files.createDirectories(mnt);
    boolean mounted = sh("mount", "-t", "tmpfs", "-o", "size=180k", "tmpfs", mnt.toString()) == 0;
    assumeTrue(mounted, "cannot mount a small tmpfs here (needs root on Linux)");
    try {
      SplittableRandom r = new SplittableRandom(2);
      StringBuilder sb = new StringBuilder();
      for (int i = 0; i < 16; i++) {
        sb.append("{\"input_ids\":[");
        for (int t = 0; t < 12; t++) sb.append(t == 0 ? "" : ",").append(3 + r.nextInt(500));
        sb.append("]}\n");
      }
      Path data = tmp.resolve("d.jsonl");
      Files.writeString(data, sb);
      TrainingConfig cfg = TrainingConfig.builder().outputDir(mnt).batchSize(2).maxSteps(4)
          .saveSteps(1).saveTotalLimit(1).dataFormat(DataFormat.PRETOKENIZED).loggingSteps(100)
          .lora(LoraConfig.builder().rank(4).alpha(8).allLinear().build()).build();
      try (MistralModel m = MistralModel.load(MODEL, Device.cpu())) {
        Lora4jException e = assertThrows(Lora4jException.class,
            () -> LoraTrainer.fit(m, Dataset.jsonl(data), cfg, List.of()));
        assertTrue(e.getMessage().contains("cannot write checkpoint") && e.getMessage().contains("intact"), e.getMessage());
        System.out.println("full disk: " + e.getMessage());
      }
      List<Path> left = new CheckpointStore(mnt, 1).list();
      assertEquals(1, left.size(), left.toString());
      assertNull(CheckpointStore.verify(left.get(0)), "the previous checkpoint is intact");
      try (var s = Files.list(mnt)) {
        assertTrue(s.noneMatch(p -> p.getFileName().toString().startsWith(".tmp-")), "no partial checkpoint left");
      }
      // It resumes from there once space is available again.
      Path copy = tmp.resolve("copy");
      Files.createDirectories(copy);
      Path ck = copy.resolve(left.get(0).getFileName());
      Files.createDirectories(ck);
      try (var s = Files.list(left.get(0))) {
        for (Path f : s.toList()) Files.copy(f, ck.resolve(f.getFileName()));
      }
      try (MistralModel m = MistralModel.load(MODEL, Device.cpu())) {
        var res = LoraTrainer.fit(m, Dataset.jsonl(data),
            cfg.toBuilder().outputDir(copy).saveSteps(0).resume(true).build(), List.of());
        assertEquals(4, res.steps());
      }
    } finally {
      sh("umount", mnt.toString());
    }
  }
}
