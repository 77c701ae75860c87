package dev.lora4j.io;

import dev.lora4j.Lora4jException;
import java.io.IOException;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.Map;

/**
 * A file a command writes as a whole (a GGUF export, a Modelfile): written under a temporary name
 * beside it ({@code .NAME.partial-PID}) and renamed into place when complete, so a failed or killed
 * command leaves nothing half-written at the output path. An existing file is refused unless
 * overwriting was asked for; then it is replaced by the rename, never written into.
 *
 * <pre>{@code
 * OutputFile.checkApart(out, "--output", Map.of("--model folder", modelDir));
 * try (OutputFile f = OutputFile.stage(out, overwrite)) {
 *   write(f.path());
 *   f.commit();
 * }
 * }</pre>
 */
public final class OutputFile implements AutoCloseable {
  private final Path target;
  private final Path tmp;
  private boolean committed;

  private OutputFile(Path target, Path tmp) {
    this.target = target;
    this.tmp = tmp;
  }

  /**
   * Refuses an output file that is one of the inputs (a file or folder read by the command), or an
   * existing file inside an input folder (which may be one the command reads). A new file inside an
   * input folder is allowed: it cannot destroy anything. Symbolic links are resolved.
   *
   * @param out the output file
   * @param outName how the output is named in the message ("--output")
   * @param inputs name to path of each input folder or file; null paths are ignored
   * @throws Lora4jException naming both when they overlap
   */
  public static void checkApart(Path out, String outName, Map<String, Path> inputs) {
    Path o = OutputFolder.canonicalPath(out);
    for (Map.Entry<String, Path> e : inputs.entrySet()) {
      if (e.getValue() == null) continue;
      Path in = OutputFolder.canonicalPath(e.getValue());
      String how =
          o.equals(in)
              ? "is"
              : in.startsWith(o)
                  ? "contains"
                  : o.startsWith(in) && Files.exists(o, LinkOption.NOFOLLOW_LINKS)
                      ? "is an existing file inside"
                      : null;
      if (how != null) {
        throw new Lora4jException(
            outName
                + " "
                + out
                + " "
                + how
                + " the "
                + e.getKey()
                + " "
                + e.getValue()
                + ": writing there could destroy it; choose an output file apart from the inputs");
      }
    }
  }

  /**
   * Starts writing {@code out}: checks that it is absent (or, with overwrite, a file to replace)
   * and picks the temporary file to write into.
   *
   * @throws Lora4jException when out is a folder, or an existing file without overwrite
   */
  public static OutputFile stage(Path out, boolean overwrite) {
    checkWritable(out, overwrite);
    Path target = out.toAbsolutePath().normalize();
    Path parent = target.getParent();
    String name = target.getFileName().toString();
    try {
      Files.createDirectories(parent);
      removeStale(parent, name);
      Path tmp = parent.resolve("." + name + ".partial-" + ProcessHandle.current().pid());
      Files.deleteIfExists(tmp);
      return new OutputFile(target, tmp);
    } catch (IOException e) {
      throw new Lora4jException("cannot create " + out + ": " + e, e);
    }
  }

  /**
   * Checks, before any work, that {@code out} may be written: not a folder, and absent unless
   * overwrite.
   *
   * @throws Lora4jException when it may not
   */
  public static void checkWritable(Path out, boolean overwrite) {
    Path target = out.toAbsolutePath().normalize();
    if (Files.isDirectory(target)) {
      throw new Lora4jException(out + " is a folder: give the path of the file to write");
    }
    if (!overwrite && Files.exists(target, LinkOption.NOFOLLOW_LINKS)) {
      throw new Lora4jException(
          out
              + " exists: choose a new file name, or pass "
              + OutputFolder.OVERWRITE_OPTION
              + " to replace it");
    }
  }

  /** Where to write: the temporary file until {@link #commit()}. */
  public Path path() {
    return tmp;
  }

  /** Puts the written file in place of the output path (replacing what was there). */
  public void commit() {
    if (committed) return;
    try {
      Files.move(tmp, target, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
      committed = true;
    } catch (IOException e) {
      throw new Lora4jException(
          "cannot move the written file into place at " + target + ": " + e, e);
    }
  }

  /** Deletes the temporary file unless committed. */
  @Override
  public void close() {
    if (committed) return;
    try {
      Files.deleteIfExists(tmp);
    } catch (IOException ignored) {
      // the failure that got us here is what the caller reports
    }
  }

  /** Leftovers of killed writers of the same file (their process is gone). */
  private static void removeStale(Path parent, String name) throws IOException {
    try (DirectoryStream<Path> ds = Files.newDirectoryStream(parent, "." + name + ".partial-*")) {
      for (Path p : ds) {
        String n = p.getFileName().toString();
        long pid;
        try {
          pid = Long.parseLong(n.substring(n.lastIndexOf('-') + 1));
        } catch (NumberFormatException e) {
          continue;
        }
        if (pid == ProcessHandle.current().pid() || ProcessHandle.of(pid).isEmpty()) {
          OutputFolder.deleteTree(p);
        }
      }
    }
  }
}
