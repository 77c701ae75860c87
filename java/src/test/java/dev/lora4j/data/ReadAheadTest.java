package dev.lora4j.data;

import static org.junit.jupiter.api.Assertions.*;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.lora4j.tokenizer.Tokenizer;
import java.io.ByteArrayOutputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.SplittableRandom;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Lines encoded ahead on the pool (lora4j.dataThreads) against the same pass one line at a time:
 * the same examples in the same order, the same counts and first problems, the same error at the
 * same line.
 */
class ReadAheadTest {
  static final ObjectMapper JSON = new ObjectMapper();
  static TokenizerTextEncoder enc;

  @TempDir Path dir;

  @BeforeAll
  static void load() {
    enc = new TokenizerTextEncoder(Tokenizer.fromModelDir(RealTokenizerTest.DIR));
  }

  /** Every example of one pass, as text, then the pass's report (or its error). */
  static List<String> pass(Path f, DataConfig c, int threads) {
    String old = System.getProperty("lora4j.dataThreads");
    System.setProperty("lora4j.dataThreads", Integer.toString(threads));
    List<String> out = new ArrayList<>();
    DataStats stats = new DataStats();
    try (ExampleStream s = JsonlDataset.open(f, enc, null, c).examplesInFileOrder(stats)) {
      while (s.hasNext()) {
        TokenizedExample e = s.next();
        out.add(e.source() + " " + Arrays.toString(e.inputIds()) + Arrays.toString(e.labels()));
      }
      out.add("report " + stats.report());
    } catch (DataException e) {
      out.add("error " + e.getMessage());
    } finally {
      if (old == null) System.clearProperty("lora4j.dataThreads");
      else System.setProperty("lora4j.dataThreads", old);
    }
    return out;
  }

  /** A file of text and prompt/completion lines with bad ones among them, blank and non-UTF-8. */
  Path mixed(long seed, int lines, boolean bad) throws Exception {
    SplittableRandom r = new SplittableRandom(seed);
    ByteArrayOutputStream b = new ByteArrayOutputStream();
    b.write(new byte[] {(byte) 0xEF, (byte) 0xBB, (byte) 0xBF}); // a BOM before line 1
    String[] words = {"the", "cat", "sat", " on", "mat", "日本", "🦙", "\n", "  ", "x", "42"};
    for (int i = 0; i < lines; i++) {
      StringBuilder t = new StringBuilder();
      int n = r.nextInt(60);
      for (int k = 0; k < n; k++) t.append(words[r.nextInt(words.length)]).append(' ');
      ObjectNode o = JSON.createObjectNode();
      o.put("prompt", "Q" + i + ": ");
      o.put("completion", t.toString());
      String line = o.toString();
      int kind = bad ? r.nextInt(20) : 19;
      byte[] bytes =
          switch (kind) {
            case 0 -> "{not json".getBytes(StandardCharsets.UTF_8);
            case 1 -> new byte[] {'{', '"', 'a', (byte) 0xC3, '"', '}'}; // not UTF-8
            case 2 -> "   ".getBytes(StandardCharsets.UTF_8);
            case 3 -> "{\"text\": \"only text\"}".getBytes(StandardCharsets.UTF_8);
            case 4 -> "{\"prompt\": \"no completion\"}".getBytes(StandardCharsets.UTF_8);
            default -> line.getBytes(StandardCharsets.UTF_8);
          };
      b.write(bytes);
      b.write('\n');
    }
    Path f = dir.resolve("mixed-" + seed + "-" + bad + ".jsonl");
    Files.write(f, b.toByteArray());
    return f;
  }

  @Test
  void thePoolGivesTheOneLineAtATimePass() throws Exception {
    long before = JsonlReader.POOLED.get();
    for (long seed = 1; seed <= 3; seed++) {
      for (boolean bad : new boolean[] {false, true}) {
        Path f = mixed(seed, 700, bad);
        for (DataConfig c :
            List.of(
                DataConfig.builder().shuffleBuffer(0).maxSeqLength(40).skipInvalid(true).build(),
                DataConfig.builder().shuffleBuffer(0).maxSeqLength(4096).build(),
                DataConfig.builder()
                    .shuffleBuffer(0)
                    .maxSeqLength(30)
                    .completionsOnly(true)
                    .skipInvalid(true)
                    .validationFraction(0.2)
                    .build())) {
          List<String> one = pass(f, c, 1);
          assertEquals(one, pass(f, c, 4), f + " " + c);
          assertEquals(one, pass(f, c, 2), f + " " + c);
        }
      }
    }
    assertTrue(JsonlReader.POOLED.get() - before > 1000, "the pool encoded no line");
  }

  @Test
  void aBadLineStopsThePassAtItsLineWithThePool() throws Exception {
    List<String> lines = new ArrayList<>();
    for (int i = 0; i < 500; i++) lines.add("{\"text\": \"line " + i + "\"}");
    lines.set(321, "{\"text\": 5}");
    Path f = dir.resolve("bad.jsonl");
    Files.write(f, lines, StandardCharsets.UTF_8);
    DataConfig c = DataConfig.builder().shuffleBuffer(0).maxSeqLength(4096).build();
    List<String> one = pass(f, c, 1);
    List<String> four = pass(f, c, 4);
    assertEquals(one, four);
    assertEquals(322, four.size(), "321 examples, then the error");
    assertTrue(four.get(321).startsWith("error " + f + ":322: "), four.get(321));
  }
}
