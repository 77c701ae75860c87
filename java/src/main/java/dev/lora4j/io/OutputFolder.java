package dev.lora4j.io;

import dev.lora4j.Lora4jException;
import java.io.IOException;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;

/**
 * A folder a command writes as a whole (a merged model, an adapter): written under a temporary name
 * beside it ({@code .NAME.partial-PID}) and renamed into place when complete, so a failed or killed
 * command leaves nothing half-written at the output path. An output folder that exists and is not
 * empty is refused unless overwriting was asked for; then its old contents are replaced as a whole
 * by the new ones (never mixed with them).
 *
 * <pre>{@code
 * OutputFolder.checkApart(out, "output folder", Map.of("model folder", modelDir));
 * try (OutputFolder f = OutputFolder.stage(out, overwrite)) {
 *   write(f.path());
 *   f.commit();
 * }
 * }</pre>
 */
public final class OutputFolder implements AutoCloseable {
  /**
   * How messages name the argument that allows replacing a non-empty folder or an existing file:
   * the {@code overwrite} parameter of the method that writes it (saveAdapter, MergedExport.write,
   * GgufExport, ...); the command line rewrites it to its flag.
   */
  public static final String OVERWRITE_OPTION = "overwrite = true";

  private final Path target;
  private final Path tmp;
  private boolean committed;

  private OutputFolder(Path target, Path tmp) {
    this.target = target;
    this.tmp = tmp;
  }

  /**
   * Refuses an output path that is one of the inputs, lies inside one, or contains one (so that
   * writing or replacing it could touch the inputs). Symbolic links are resolved.
   *
   * @param out the output folder
   * @param outName how the output is named in the message ("--output", "output folder")
   * @param inputs name to path of each input folder or file; null paths are ignored
   * @throws Lora4jException naming both when they overlap
   */
  public static void checkApart(Path out, String outName, Map<String, Path> inputs) {
    Path o = canonicalPath(out);
    for (Map.Entry<String, Path> e : inputs.entrySet()) {
      if (e.getValue() == null) continue;
      Path in = canonicalPath(e.getValue());
      String how =
          o.equals(in)
              ? "is"
              : o.startsWith(in) ? "is inside" : in.startsWith(o) ? "contains" : null;
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
                + ": writing there could destroy it; choose an output folder apart from the"
                + " inputs");
      }
    }
  }

  /**
   * Starts writing {@code out}: checks that it is absent, an empty folder, or (with overwrite) a
   * folder to replace, and creates the temporary folder to write into.
   *
   * @throws Lora4jException when out is a file, or a non-empty folder without overwrite
   */
  public static OutputFolder stage(Path out, boolean overwrite) {
    Path target = out.toAbsolutePath().normalize();
    if (Files.exists(target, LinkOption.NOFOLLOW_LINKS) && !Files.isDirectory(target)) {
      throw new Lora4jException(out + " exists and is not a folder");
    }
    if (!overwrite) {
      List<String> entries = entries(target, 3);
      if (!entries.isEmpty()) {
        throw new Lora4jException(
            "output folder "
                + out
                + " is not empty (it holds "
                + String.join(", ", entries)
                + "): choose a new or empty folder, or pass "
                + OVERWRITE_OPTION
                + " to replace its contents");
      }
    }
    Path parent = target.getParent();
    String name = target.getFileName().toString();
    try {
      Files.createDirectories(parent);
      removeStale(parent, name);
      Path tmp = parent.resolve("." + name + ".partial-" + ProcessHandle.current().pid());
      deleteTree(tmp);
      Files.createDirectories(tmp);
      return new OutputFolder(target, tmp);
    } catch (IOException e) {
      throw new Lora4jException("cannot create a folder beside " + out + " to write into: " + e, e);
    }
  }

  /** Where to write: the temporary folder until {@link #commit()}. */
  public Path path() {
    return tmp;
  }

  /** Puts the written folder in place of the output path (replacing what was there). */
  public void commit() {
    if (committed) return;
    Path old =
        target.resolveSibling("." + target.getFileName() + ".old-" + ProcessHandle.current().pid());
    try {
      if (Files.exists(target, LinkOption.NOFOLLOW_LINKS)) {
        deleteTree(old);
        Files.move(target, old, StandardCopyOption.ATOMIC_MOVE);
      }
      Files.move(tmp, target, StandardCopyOption.ATOMIC_MOVE);
      committed = true;
      deleteTree(old);
    } catch (IOException e) {
      throw new Lora4jException(
          "cannot move the written folder into place at " + target + ": " + e, e);
    }
  }

  /** Deletes the temporary folder unless committed. */
  @Override
  public void close() {
    if (committed) return;
    try {
      deleteTree(tmp);
    } catch (IOException ignored) {
      // the failure that got us here is what the caller reports
    }
  }

  /** Up to max entry names of a folder (empty when absent or empty), with "..." when more. */
  public static List<String> entries(Path dir, int max) {
    List<String> out = new ArrayList<>();
    if (!Files.isDirectory(dir)) return out;
    try (DirectoryStream<Path> ds = Files.newDirectoryStream(dir)) {
      for (Path p : ds) {
        if (out.size() == max) {
          out.add("...");
          break;
        }
        out.add(p.getFileName().toString());
      }
    } catch (IOException e) {
      throw new Lora4jException("cannot list " + dir + ": " + e, e);
    }
    return out;
  }

  /** Deletes a file or a folder with everything in it; nothing when absent. */
  public static void deleteTree(Path p) throws IOException {
    if (!Files.exists(p, LinkOption.NOFOLLOW_LINKS)) return;
    if (!Files.isDirectory(p, LinkOption.NOFOLLOW_LINKS)) {
      Files.delete(p);
      return;
    }
    try (Stream<Path> s = Files.walk(p)) {
      for (Path q : s.sorted(Comparator.reverseOrder()).toList()) Files.delete(q);
    }
  }

  /** Leftovers of killed writers of the same folder (their process is gone). */
  private static void removeStale(Path parent, String name) throws IOException {
    try (DirectoryStream<Path> ds =
        Files.newDirectoryStream(parent, "." + name + ".{partial,old}-*")) {
      for (Path p : ds) {
        String n = p.getFileName().toString();
        long pid;
        try {
          pid = Long.parseLong(n.substring(n.lastIndexOf('-') + 1));
        } catch (NumberFormatException e) {
          continue;
        }
        if (pid == ProcessHandle.current().pid() || ProcessHandle.of(pid).isEmpty()) deleteTree(p);
      }
    }
  }

  /** Absolute, normalized, with symbolic links resolved as far as the path exists. */
  public static Path canonicalPath(Path p) {
    Path abs = p.toAbsolutePath().normalize();
    Path existing = abs;
    List<Path> rest = new ArrayList<>();
    while (existing != null && !Files.exists(existing)) {
      rest.add(0, existing.getFileName());
      existing = existing.getParent();
    }
    if (existing == null) return abs;
    try {
      Path r = existing.toRealPath();
      for (Path n : rest) r = r.resolve(n);
      return r;
    } catch (IOException e) {
      return abs;
    }
  }
}
