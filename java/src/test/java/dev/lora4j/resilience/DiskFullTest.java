package dev.lora4j.resilience;

import static org.junit.jupiter.api.Assertions.*;

import dev.lora4j.Dataset;
import dev.lora4j.Device;
import dev.lora4j.Lora4jException;
import dev.lora4j.LoraConfig;
import dev.lora4j.LoraTrainer;
import dev.lora4j.MistralModel;
import dev.lora4j.TrainingConfig;
import dev.lora4j.data.DataFormat;
import dev.lora4j.train.CheckpointStore;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.List;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A disk that fills up while a checkpoint is written: a clear error, no partial checkpoint left,
 * and the previous checkpoint stays intact and usable. The full disk is a {@link SmallDisk}, a file
 * system over the real one that runs out of space at a set size, so no root is needed.
 */
class DiskFullTest {
  static final Path MODEL = Path.of("src/test/resources/hf-reference/tiny/model");

  static Path data(Path tmp) throws Exception {
    SplittableRandom r = new SplittableRandom(2);
    StringBuilder sb = new StringBuilder();
    for (int i = 0; i < 16; i++) {
      sb.append("{\"input_ids\":[");
      for (int t = 0; t < 12; t++) sb.append(t == 0 ? "" : ",").append(3 + r.nextInt(500));
      sb.append("]}\n");
    }
    Path data = tmp.resolve("d.jsonl");
    Files.writeString(data, sb);
    return data;
  }

  static TrainingConfig config(Path out) {
    return TrainingConfig.builder()
        .outputDir(out)
        .batchSize(2)
        .maxSteps(4)
        .saveSteps(1)
        .saveTotalLimit(1)
        .dataFormat(DataFormat.PRETOKENIZED)
        .loggingSteps(100)
        .lora(LoraConfig.builder().rank(4).alpha(8).allLinear().build())
        .build();
  }

  static long folderBytes(Path dir) throws Exception {
    try (var s = Files.walk(dir)) {
      long n = 0;
      for (Path p : s.toList()) if (Files.isRegularFile(p)) n += Files.size(p);
      return n;
    }
  }

  @Test
  void fullDiskWhileCheckpointingKeepsThePreviousCheckpoint(@TempDir Path tmp) throws Exception {
    Path data = data(tmp);
    // The size of one checkpoint, from a run on the ordinary disk.
    Path measure = tmp.resolve("measure");
    try (MistralModel m = MistralModel.load(MODEL, Device.cpu())) {
      LoraTrainer.fit(
          m, Dataset.jsonl(data), config(measure).toBuilder().maxSteps(1).build(), List.of());
    }
    long checkpoint = folderBytes(measure.resolve("checkpoint-1"));
    assertTrue(checkpoint > 10_000, "checkpoint of " + checkpoint + " bytes");
    // Room for one checkpoint and the metrics, not for the second checkpoint written beside it.
    Path disk = SmallDisk.mount(tmp.resolve("small-disk"), checkpoint * 3 / 2);
    TrainingConfig cfg = config(disk);
    try (MistralModel m = MistralModel.load(MODEL, Device.cpu())) {
      Lora4jException e =
          assertThrows(
              Lora4jException.class, () -> LoraTrainer.fit(m, Dataset.jsonl(data), cfg, List.of()));
      String msg = e.getMessage();
      assertTrue(
          msg.contains("cannot write checkpoint " + disk.resolve("checkpoint-2"))
              && msg.contains("intact"),
          msg);
      assertTrue(msg.contains(SmallDisk.FULL), msg);
      System.out.println("full disk: " + msg);
    }
    List<Path> left = new CheckpointStore(disk, 1).list();
    assertEquals(List.of(disk.resolve("checkpoint-1")), left);
    assertNull(CheckpointStore.verify(left.get(0)), "the previous checkpoint is intact");
    try (var s = Files.list(disk)) {
      assertTrue(
          s.noneMatch(p -> p.getFileName().toString().startsWith(".tmp-")),
          "no partial checkpoint left");
    }
    // It resumes from there once space is available again.
    Path copy = tmp.resolve("copy");
    Files.createDirectories(copy);
    Path ck = copy.resolve(left.get(0).getFileName().toString());
    Files.createDirectories(ck);
    try (var s = Files.list(left.get(0))) {
      for (Path f : s.toList()) Files.copy(f, ck.resolve(f.getFileName().toString()));
    }
    try (MistralModel m = MistralModel.load(MODEL, Device.cpu())) {
      var res =
          LoraTrainer.fit(
              m,
              Dataset.jsonl(data),
              cfg.toBuilder().outputDir(copy).saveSteps(0).resume(true).build(),
              List.of());
      assertEquals(4, res.steps());
    }
  }

  @Test
  void smallDiskFailsWritesBeyondItsCapacityAndFreesDeletedFiles(@TempDir Path tmp)
      throws Exception {
    Path disk = SmallDisk.mount(tmp.resolve("d"), 1000);
    Files.write(disk.resolve("a"), new byte[600]);
    IOException e =
        assertThrows(IOException.class, () -> Files.write(disk.resolve("b"), new byte[600]));
    assertEquals(SmallDisk.FULL, e.getMessage());
    assertEquals(400, Files.size(tmp.resolve("d/b")), "what fitted was written");
    // overwriting inside a file needs no new space; growing it does
    try (FileChannel ch = FileChannel.open(disk.resolve("a"), StandardOpenOption.WRITE)) {
      assertEquals(600, ch.write(ByteBuffer.allocate(600), 0));
      assertThrows(IOException.class, () -> ch.write(ByteBuffer.allocate(1), 600));
    }
    Files.delete(disk.resolve("b"));
    Files.writeString(disk.resolve("c"), "x".repeat(400));
    assertEquals(1000, folderBytes(tmp.resolve("d")));
  }
}
