package dev.lora4j.train;

import static org.junit.jupiter.api.Assertions.*;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.lora4j.Lora4jException;
import dev.lora4j.TrainingListener;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** metrics.jsonl through a file kept open: every line on disk when its call returns. */
class MetricsFileTest {
  static final ObjectMapper JSON = new ObjectMapper();

  static TrainingListener.StepMetrics step(long s, double loss) {
    return new TrainingListener.StepMetrics(s, 0.5, loss, 1.25, 1e-4, 100, 2000, s * 0.1, 4096);
  }

  static List<JsonNode> lines(Path p) throws Exception {
    List<JsonNode> out = new ArrayList<>();
    for (String l : Files.readAllLines(p)) out.add(JSON.readTree(l));
    return out;
  }

  @Test
  void eachLineIsReadableBeforeTheFileCloses(@TempDir Path dir) throws Exception {
    Path p = dir.resolve("metrics.jsonl");
    MetricsFile m = new MetricsFile(p);
    m.reset();
    for (int s = 1; s <= 3; s++) {
      m.onStep(step(s, 2.0 / s));
      List<JsonNode> got = lines(p); // another reader, while the writer holds the file open
      assertEquals(s, got.size());
      assertEquals(s, got.get(s - 1).get("step").asLong());
      assertEquals(2.0 / s, got.get(s - 1).get("loss").asDouble());
    }
    m.onSkippedStep(
        new TrainingListener.SkippedStep(4, "loss spike", Double.NaN, 3.0, "0:8 .. 0:9"));
    List<JsonNode> got = lines(p);
    assertEquals("skipped", got.get(3).get("type").asText());
    assertTrue(got.get(3).get("loss").isNull(), "NaN is written as null");
    m.close();
    m.onStep(step(5, 0.1)); // a line after the close opens the file again and appends
    m.close();
    m.close(); // twice: no-op
    assertEquals(
        List.of(1L, 2L, 3L, 4L, 5L), lines(p).stream().map(n -> n.get("step").asLong()).toList());
  }

  @Test
  void truncateAndResetReplaceTheFileTheWriterHeld(@TempDir Path dir) throws Exception {
    Path p = dir.resolve("metrics.jsonl");
    MetricsFile m = new MetricsFile(p);
    for (int s = 1; s <= 4; s++) m.onStep(step(s, 1.0));
    assertNull(m.truncateAfter(2)); // a resume from step 2's checkpoint, with the file still open
    m.onStep(step(3, 0.5));
    List<JsonNode> got = lines(p);
    assertEquals(List.of(1L, 2L, 3L), got.stream().map(n -> n.get("step").asLong()).toList());
    assertEquals(0.5, got.get(2).get("loss").asDouble(), "the new step 3, not the old one");
    m.reset();
    assertFalse(Files.exists(p));
    m.onStep(step(1, 9.0));
    assertEquals(1, lines(p).size());
    m.close();
  }

  @Test
  void linesThatAreNotJsonAreNamedWhenTheFileIsCutForAResume(@TempDir Path dir) throws Exception {
    Path p = dir.resolve("metrics.jsonl");
    MetricsFile m = new MetricsFile(p);
    for (int s = 1; s <= 3; s++) m.onStep(step(s, 1.0));
    m.close();
    List<String> all = new java.util.ArrayList<>(Files.readAllLines(p));
    all.add(1, "garbage"); // damage in the middle
    all.set(3, all.get(3).substring(0, 10)); // step 3's line cut short
    Files.write(p, all);
    String note = m.truncateAfter(3);
    assertNotNull(note);
    assertTrue(note.contains(p + ": line(s) 2, 4 of 4 were not JSON"), note);
    assertEquals(List.of(1L, 2L), lines(p).stream().map(n -> n.get("step").asLong()).toList());
  }

  @Test
  void aFailedWriteNamesTheFileAndAFailedRunKeepsItsError(@TempDir Path dir) throws Exception {
    Path p = dir.resolve("missing-folder").resolve("metrics.jsonl");
    MetricsFile m = new MetricsFile(p);
    Lora4jException e = assertThrows(Lora4jException.class, () -> m.onStep(step(1, 1.0)));
    assertTrue(e.getMessage().contains(p.toString()), e.getMessage());
    RuntimeException runError = new RuntimeException("the run's own failure");
    m.closeAfterFailure(runError); // nothing open: no-op, nothing suppressed
    assertEquals(0, runError.getSuppressed().length);
  }
}
