package dev.lora4j.io;

import static org.junit.jupiter.api.Assertions.*;

import dev.lora4j.Lora4jException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Staged output folders: nothing half-written, nothing mixed, inputs never overlapped. */
class OutputFolderTest {
  static List<String> names(Path dir) throws Exception {
    try (var s = Files.list(dir)) {
      return s.map(p -> p.getFileName().toString()).sorted().toList();
    }
  }

  @Test
  void aFailedWriteLeavesNothingAtTheOutputAndNoTemporaryFolder(@TempDir Path tmp)
      throws Exception {
    Path out = tmp.resolve("out");
    RuntimeException boom = new RuntimeException("disk full");
    RuntimeException e =
        assertThrows(
            RuntimeException.class,
            () -> {
              try (OutputFolder f = OutputFolder.stage(out, false)) {
                Files.writeString(f.path().resolve("half.safetensors"), "half");
                throw boom;
              }
            });
    assertSame(boom, e);
    assertEquals(List.of(), names(tmp), "neither the output nor the temporary folder exists");
  }

  @Test
  void aFailedOverwriteKeepsTheOldContentsAndACommittedOneReplacesThemWhole(@TempDir Path tmp)
      throws Exception {
    Path out = tmp.resolve("out");
    Files.createDirectories(out);
    Files.writeString(out.resolve("old.txt"), "old");
    assertThrows(
        IllegalStateException.class,
        () -> {
          try (OutputFolder f = OutputFolder.stage(out, true)) {
            Files.writeString(f.path().resolve("new.txt"), "new");
            throw new IllegalStateException("interrupted");
          }
        });
    assertEquals(List.of("old.txt"), names(out));
    try (OutputFolder f = OutputFolder.stage(out, true)) {
      Files.writeString(f.path().resolve("new.txt"), "new");
      f.commit();
    }
    assertEquals(List.of("new.txt"), names(out), "replaced, not mixed");
    assertEquals(List.of("out"), names(tmp));
  }

  @Test
  void aNonEmptyFolderIsRefusedWithoutOverwrite(@TempDir Path tmp) throws Exception {
    Path out = tmp.resolve("out");
    Files.createDirectories(out);
    Files.writeString(out.resolve("keep.txt"), "mine");
    Lora4jException e = assertThrows(Lora4jException.class, () -> OutputFolder.stage(out, false));
    assertTrue(
        e.getMessage().contains("not empty")
            && e.getMessage().contains("keep.txt")
            && e.getMessage().contains(OutputFolder.OVERWRITE_OPTION),
        e.getMessage());
    assertEquals("mine", Files.readString(out.resolve("keep.txt")));
    Files.delete(out.resolve("keep.txt"));
    try (OutputFolder f = OutputFolder.stage(out, false)) {
      f.commit();
    }
    assertTrue(Files.isDirectory(out), "an empty folder is accepted");
  }

  @Test
  void overlapWithAnInputIsRefusedThroughSymbolicLinksToo(@TempDir Path tmp) throws Exception {
    Path model = Files.createDirectories(tmp.resolve("model"));
    Path link = Files.createSymbolicLink(tmp.resolve("link"), model);
    Map<String, Path> in = Map.of("model folder", model);
    for (Path out : List.of(model, link, link.resolve("x/y"), tmp, model.resolve("."))) {
      Lora4jException e =
          assertThrows(
              Lora4jException.class,
              () -> OutputFolder.checkApart(out, "output folder", in),
              out.toString());
      assertTrue(e.getMessage().contains("model folder"), e.getMessage());
    }
    OutputFolder.checkApart(tmp.resolve("model2"), "output folder", in);
  }
}
