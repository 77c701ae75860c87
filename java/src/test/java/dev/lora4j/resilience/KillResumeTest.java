package dev.lora4j.resilience;

import static org.junit.jupiter.api.Assertions.*;

import dev.lora4j.cli.Main;
import dev.lora4j.train.CheckpointStore;
import java.io.File;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A training process killed with SIGKILL at random moments, some of them while a checkpoint is
 * being written, resumes from its last complete checkpoint and ends with an adapter bitwise equal
 * to the uninterrupted run's (CPU engine).
 */
class KillResumeTest {
  static final Path MODEL = Path.of("src/test/resources/hf-reference/hd128/model").toAbsolutePath();
  static final int TRIALS = Integer.getInteger("lora4j.kill.trials", 20);

  static List<String> args(Path data, Path out) {
    return List.of(
        "train",
        "--model",
        MODEL.toString(),
        "--data",
        data.toString(),
        "--output",
        out.toString(),
        "--device",
        "cpu",
        "--threads",
        "1",
        "--rank",
        "4",
        "--alpha",
        "8",
        "--targets",
        "all-linear",
        "--lr",
        "5e-3",
        "--batch-size",
        "2",
        "--epochs",
        "1",
        "--save-steps",
        "1",
        "--save-limit",
        "2",
        "--shuffle-buffer",
        "8",
        "--seed",
        "5",
        "--format",
        "pretokenized",
        "--log-steps",
        "1000");
  }

  static int runInProcess(List<String> a) {
    StringWriter err = new StringWriter();
    int code =
        Main.run(
            a.toArray(new String[0]), new PrintWriter(new StringWriter()), new PrintWriter(err));
    assertEquals(0, code, err.toString());
    return code;
  }

  static boolean checkpointBeingWritten(Path out) {
    try (Stream<Path> s = Files.list(out)) {
      return s.anyMatch(p -> p.getFileName().toString().startsWith(".tmp-checkpoint-"));
    } catch (Exception e) {
      return false;
    }
  }

  static Path data(Path tmp) throws Exception {
    SplittableRandom r = new SplittableRandom(11);
    StringBuilder sb = new StringBuilder();
    for (int i = 0; i < 24; i++) {
      sb.append("{\"input_ids\":[");
      int len = 16 + r.nextInt(16);
      for (int t = 0; t < len; t++) sb.append(t == 0 ? "" : ",").append(3 + r.nextInt(1000));
      sb.append("]}\n");
    }
    Path data = tmp.resolve("data.jsonl");
    Files.writeString(data, sb);
    return data;
  }

  /** The run in a JVM of its own, its output in out/log.txt. */
  static Process start(Path data, Path out) throws java.io.IOException {
    Files.createDirectories(out);
    return new ProcessBuilder(subprocess(args(data, out)))
        .redirectErrorStream(true)
        .redirectOutput(out.resolve("log.txt").toFile())
        .start();
  }

  static List<String> subprocess(List<String> args) {
    List<String> cmd =
        new ArrayList<>(
            List.of(
                Path.of(System.getProperty("java.home"), "bin", "java").toString(),
                "--enable-native-access=ALL-UNNAMED",
                "-Dorg.bytedeco.javacpp.cachedir="
                    + System.getProperty(
                        "org.bytedeco.javacpp.cachedir",
                        System.getProperty("java.io.tmpdir") + File.separator + "lora4j-javacpp"),
                "-cp",
                System.getProperty("java.class.path"),
                Main.class.getName()));
    cmd.addAll(args);
    return cmd;
  }

  @Test
  void aSignalSaysWhatTheRunKept(@TempDir Path tmp) throws Exception {
    // SIGTERM (as Ctrl-C's SIGINT) once the first checkpoint is in place: the run says where it
    // stopped and which checkpoint --resume continues from, instead of ending without a word
    Path data = data(tmp), out = tmp.resolve("run");
    Process p = start(data, out);
    long deadline = System.nanoTime() + 60_000_000_000L;
    while (p.isAlive()
        && !Files.isDirectory(out.resolve("checkpoint-1"))
        && System.nanoTime() < deadline) {
      Thread.sleep(5);
    }
    assertTrue(
        p.isAlive(),
        "the run ended before its signal: " + Files.readString(out.resolve("log.txt")));
    p.destroy();
    int code = p.waitFor();
    String log = Files.readString(out.resolve("log.txt"));
    assertEquals(143, code, log);
    assertTrue(
        log.contains("training stopped by a signal at step ")
            && log.contains("the last checkpoint is ")
            && log.contains("checkpoint-")
            && log.contains("--resume"),
        log);
  }

  @Test
  void killedRunsResumeToTheSameAdapter(@TempDir Path tmp) throws Exception {
    SplittableRandom r = new SplittableRandom(11);
    Path data = data(tmp);
    Path ref = tmp.resolve("ref");
    runInProcess(args(data, ref));
    byte[] want = Files.readAllBytes(ref.resolve("adapter/adapter_model.safetensors"));

    int duringWrite = 0, killed = 0;
    for (int trial = 0; trial < TRIALS; trial++) {
      Path out = tmp.resolve("t" + trial);
      Process p = start(data, out);
      boolean waitForWrite = trial % 2 == 0;
      long deadline = System.nanoTime() + (long) ((0.8 + 2.5 * r.nextDouble()) * 1e9);
      boolean inWrite = false;
      while (p.isAlive()) {
        if (waitForWrite ? (inWrite = checkpointBeingWritten(out)) : System.nanoTime() > deadline)
          break;
        if (waitForWrite && System.nanoTime() > deadline + 3_000_000_000L) break;
        Thread.onSpinWait();
      }
      if (p.isAlive()) {
        p.destroyForcibly().waitFor();
        killed++;
        if (inWrite) duringWrite++;
      }
      // Killed before its first checkpoint, the run has nothing to resume: it starts again.
      boolean resumable = !new CheckpointStore(out, Integer.MAX_VALUE).list().isEmpty();
      runInProcess(
          new ArrayList<>(args(data, out)) {
            {
              add(resumable ? "--resume" : "--overwrite");
            }
          });
      byte[] got = Files.readAllBytes(out.resolve("adapter/adapter_model.safetensors"));
      assertArrayEquals(
          want,
          got,
          "trial "
              + trial
              + " (killed "
              + (inWrite ? "while writing a checkpoint" : "at a random moment")
              + ")");
    }
    System.out.printf(
        "kill trials: %d runs, %d killed (%d while a checkpoint was being written), all resumed"
            + " bitwise equal%n",
        TRIALS, killed, duringWrite);
    assertTrue(killed >= TRIALS / 2, "too few runs were killed before finishing: " + killed);
    assertTrue(duringWrite >= 3, "too few kills landed inside a checkpoint write: " + duringWrite);
  }
}
