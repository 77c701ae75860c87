package dev.lora4j.model.nf4;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Comparator;
import java.util.stream.Stream;

/** Empties a test's temporary folder between cases. */
final class FileTreeDelete {
  private FileTreeDelete() {}

  static void delete(Path dir) {
    try (Stream<Path> s = Files.list(dir)) {
      for (Path p : s.toList()) {
        try (Stream<Path> w = Files.walk(p)) {
          for (Path q : w.sorted(Comparator.reverseOrder()).toList()) Files.delete(q);
        }
      }
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }
}
