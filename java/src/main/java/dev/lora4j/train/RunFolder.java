package dev.lora4j.train;

import dev.lora4j.Lora4jException;
import dev.lora4j.io.OutputFolder;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * The output folder of a training run and the files a run writes there: {@code adapter/}, {@code
 * metrics.jsonl}, {@code loss.png}, {@code rejected.jsonl}, {@code checkpoint-N/} and their
 * temporary names. Other files in the folder are never read, written or deleted.
 *
 * <p>Before a run starts: the folder must be apart from the model folder and the adapter it starts
 * from, and the data files must not be files of the run. A folder that holds an earlier run is
 * refused unless the run resumes it (then it must hold a checkpoint) or overwriting was asked for
 * (then the earlier run's files are deleted first, so the two runs never mix).
 */
public final class RunFolder {
  private RunFolder() {}

  /** The batches the guard rejected twice, one JSON line per micro-batch, in the output folder. */
  public static final String REJECTED = "rejected.jsonl";

  /** Names of the run's files and folders in the output folder (temporary names included). */
  static boolean isRunFile(String name) {
    return name.equals("adapter")
        || name.equals("metrics.jsonl")
        || name.equals("loss.png")
        || name.equals("loss.png.tmp")
        || name.equals(REJECTED)
        || name.equals(REJECTED + ".tmp")
        || name.startsWith(".adapter.partial-")
        || name.startsWith(".adapter.old-")
        || CHECKPOINT.matcher(name).matches();
  }

  /**
   * A checkpoint folder's name as the run writes it, complete or being written: "checkpoint-" and
   * digits only, so a user's "checkpoint-best" or "checkpoint-4.bak" beside the run is not taken
   * for one (nor deleted with the run's files).
   */
  private static final java.util.regex.Pattern CHECKPOINT =
      java.util.regex.Pattern.compile("(\\.tmp-)?" + CheckpointStore.PREFIX + "\\d+");

  /**
   * Keeps the first {@code lines} lines of the output folder's {@code rejected.jsonl}: a resumed
   * run continues from a checkpoint that counted that many rejected micro-batches, and the steps
   * after it, which write their rejections again, are replayed. Lines past the count (written after
   * the checkpoint, or cut by a kill) are dropped; the file is rewritten under a temporary name and
   * renamed. No file, or no more lines than the count: left as it is.
   *
   * @param out the output folder
   * @param lines the checkpoint's count of rejected micro-batches
   * @return how many lines were dropped
   */
  public static long keepRejected(Path out, long lines) {
    Path f = out.resolve(REJECTED);
    if (!Files.isRegularFile(f)) return 0;
    try {
      List<String> all = Files.readAllLines(f, StandardCharsets.UTF_8);
      if (all.size() <= lines) return 0;
      Path tmp = out.resolve(REJECTED + ".tmp");
      Files.write(tmp, all.subList(0, (int) lines), StandardCharsets.UTF_8);
      Files.move(tmp, f, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
      return all.size() - lines;
    } catch (IOException e) {
      throw new Lora4jException("cannot rewrite " + f + ": " + e, e);
    }
  }

  /** The lock file a run holds in its output folder (left in place; not a run file). */
  public static final String LOCK_FILE = ".lora4j-run.lock";

  /**
   * Takes the output folder for one run (an exclusive lock on its {@link #LOCK_FILE}, held until
   * the returned channel is closed): two runs into one folder, in one JVM or two processes, would
   * interleave their metrics.jsonl lines and replace each other's adapter. The folder must exist.
   *
   * @throws Lora4jException when another run holds it
   */
  public static java.nio.channels.FileChannel lock(Path out) {
    Path f = out.resolve(LOCK_FILE);
    java.nio.channels.FileChannel ch;
    try {
      ch =
          java.nio.channels.FileChannel.open(
              f, java.nio.file.StandardOpenOption.CREATE, java.nio.file.StandardOpenOption.WRITE);
    } catch (IOException e) {
      throw new Lora4jException("cannot open " + f + " to take the output folder: " + e, e);
    }
    java.nio.channels.FileLock held = null;
    try {
      held = ch.tryLock();
    } catch (java.nio.channels.OverlappingFileLockException inThisJvm) {
      held = null;
    } catch (IOException e) {
      closeQuietly(ch);
      throw new Lora4jException("cannot lock " + f + ": " + e, e);
    }
    if (held == null) {
      closeQuietly(ch);
      throw new Lora4jException(
          "output folder "
              + out
              + " is in use by another run (in this process or another; it holds "
              + LOCK_FILE
              + "): wait for it to end, or choose another folder");
    }
    return ch;
  }

  /**
   * Deletes the output folder when it holds nothing but {@link #LOCK_FILE} (a run refused after it
   * created and took the folder leaves nothing behind).
   */
  public static void removeIfOnlyLock(Path out) {
    try (DirectoryStream<Path> ds = Files.newDirectoryStream(out)) {
      for (Path p : ds) if (!p.getFileName().toString().equals(LOCK_FILE)) return;
    } catch (IOException e) {
      return;
    }
    try {
      Files.deleteIfExists(out.resolve(LOCK_FILE));
      Files.deleteIfExists(out);
    } catch (IOException ignored) {
      // left as it is: an empty folder, or one with the lock file
    }
  }

  private static void closeQuietly(java.nio.channels.FileChannel ch) {
    try {
      ch.close();
    } catch (IOException ignored) {
      // the lock goes with the channel
    }
  }

  /** The files of an earlier run in the folder, sorted by name (empty when none or no folder). */
  public static List<Path> runFiles(Path out) {
    List<Path> found = new ArrayList<>();
    if (!Files.isDirectory(out)) return found;
    try (DirectoryStream<Path> ds = Files.newDirectoryStream(out)) {
      for (Path p : ds) if (isRunFile(p.getFileName().toString())) found.add(p);
    } catch (IOException e) {
      throw new Lora4jException("cannot list output folder " + out + ": " + e, e);
    }
    found.sort(null);
    return found;
  }

  /**
   * Checks the output folder before a run and, with overwrite, deletes the earlier run's files.
   *
   * @param out the output folder
   * @param modelDir the model folder
   * @param initAdapter the adapter the run starts from, or null
   * @param dataFiles the training and validation files (nulls ignored)
   * @param resume whether the run resumes from the folder's latest checkpoint
   * @param overwrite whether an earlier run in the folder is to be replaced
   * @param delete whether overwrite deletes it here; false for the checks only (the trainer checks
   *     before it takes the folder with {@link #lock}, and deletes under the lock)
   * @throws Lora4jException when the folder overlaps an input, or holds an earlier run that is
   *     neither resumed nor to be overwritten, or when resuming a folder without a checkpoint
   */
  public static void prepare(
      Path out,
      Path modelDir,
      Path initAdapter,
      List<Path> dataFiles,
      boolean resume,
      boolean overwrite,
      boolean delete) {
    if (resume && overwrite) {
      throw new Lora4jException(
          "resume(true) and overwriteOutput(true) exclude each other: resume continues the run in "
              + out
              + ", overwrite deletes it");
    }
    if (Files.exists(out) && !Files.isDirectory(out)) {
      throw new Lora4jException("output folder " + out + " exists and is not a folder");
    }
    Map<String, Path> inputs = new LinkedHashMap<>();
    inputs.put("model folder", modelDir);
    inputs.put("adapter folder", initAdapter);
    OutputFolder.checkApart(out, "output folder", inputs);
    Path o = OutputFolder.canonicalPath(out);
    for (Path d : dataFiles) {
      if (d == null) continue;
      Path rel;
      Path c = OutputFolder.canonicalPath(d);
      if (c.startsWith(o)
          && !(rel = o.relativize(c)).toString().isEmpty()
          && isRunFile(rel.getName(0).toString())) {
        throw new Lora4jException(
            "data file "
                + d
                + " is part of the run's outputs in "
                + out
                + " (it would be replaced): move it out of the output folder");
      }
    }
    List<Path> earlier = runFiles(out);
    if (resume) {
      if (new CheckpointStore(out, Integer.MAX_VALUE).list().isEmpty()) {
        throw new Lora4jException(
            "resume(true) but "
                + out
                + " holds no checkpoint to resume from"
                + (earlier.isEmpty()
                    ? " (no earlier run there)"
                    : " (the earlier run there wrote "
                        + names(earlier)
                        + "; checkpoints are written every saveSteps steps)")
                + ": run without resume(true)"
                + (earlier.isEmpty() ? "" : " and with overwriteOutput(true) to start again"));
      }
      return;
    }
    if (earlier.isEmpty()) return;
    if (!overwrite) {
      throw new Lora4jException(
          "output folder "
              + out
              + " holds an earlier run ("
              + names(earlier)
              + "): use resume(true)"
              + " to continue it, overwriteOutput(true) to delete it and start again, or choose"
              + " another folder");
    }
    if (!delete) return;
    for (Path p : earlier) {
      try {
        OutputFolder.deleteTree(p);
      } catch (IOException e) {
        throw new Lora4jException("cannot delete " + p + " of the earlier run: " + e, e);
      }
    }
  }

  private static String names(List<Path> files) {
    List<String> n = new ArrayList<>();
    for (Path p : files) {
      if (n.size() == 4) {
        n.add("...");
        break;
      }
      n.add(p.getFileName().toString());
    }
    return String.join(", ", n);
  }
}
