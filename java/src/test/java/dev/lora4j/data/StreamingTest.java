package dev.lora4j.data;

import static dev.lora4j.data.Fakes.*;
import static org.junit.jupiter.api.Assertions.*;

import java.io.BufferedWriter;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class StreamingTest {
  @TempDir static Path dir;

  static final int LINES = 200_000;

  private static Path big(String name, int badLine) throws Exception {
    Path f = dir.resolve(name);
    try (BufferedWriter w = Files.newBufferedWriter(f, StandardCharsets.UTF_8)) {
      String filler = "the quick brown fox jumps over the lazy dog and then some more words ";
      for (int i = 1; i <= LINES; i++) {
        if (i == badLine) w.write("{\"text\": ");
        else
          w.write(
              "{\"prompt\": \"question "
                  + i
                  + ": "
                  + filler
                  + "\", \"completion\": \" answer "
                  + i
                  + "\"}");
        w.write('\n');
      }
    }
    return f;
  }

  private static long usedAfterGc() {
    Runtime rt = Runtime.getRuntime();
    long best = Long.MAX_VALUE;
    for (int i = 0; i < 3; i++) {
      System.gc();
      best = Math.min(best, rt.totalMemory() - rt.freeMemory());
    }
    return best;
  }

  @Test
  void twoHundredThousandLinesInBoundedMemory() throws Exception {
    Path f = big("big.jsonl", -1);
    // about 90 tokens a line, two int arrays each: materializing the file would take > 150 MB
    DataConfig c =
        DataConfig.builder()
            .maxSeqLength(256)
            .batchSize(8)
            .shuffleBuffer(1000)
            .prefetch(true)
            .build();
    JsonlDataset ds = open(f, c);
    long base = usedAfterGc();
    long peak = 0;
    long batches = 0;
    long examples = 0;
    try (BatchIterator it = ds.batches()) {
      while (it.hasNext()) {
        DataBatch b = it.next();
        batches++;
        examples += b.examples();
        if (batches % 5000 == 0) peak = Math.max(peak, usedAfterGc() - base);
      }
      assertEquals(LINES, it.stats().examples());
    }
    assertEquals(LINES, examples);
    assertEquals(LINES / 8, batches);
    assertTrue(peak < 48L << 20, "heap grew by " + (peak >> 20) + " MB while streaming");
  }

  @Test
  void errorsSurfaceWhereTheyAreNotUpFront() throws Exception {
    Path f = big("late.jsonl", 150_000);
    long seen = 0;
    try (ExampleStream s = open(f, cfg().build()).examplesInFileOrder(null)) {
      DataException e = null;
      try {
        while (s.hasNext()) {
          s.next();
          seen++;
        }
      } catch (DataException ex) {
        e = ex;
      }
      assertNotNull(e);
      assertTrue(e.getMessage().contains("late.jsonl:150000:"), e.getMessage());
    }
    assertEquals(149_999, seen, "every line before the bad one was handed out first");
  }
}
