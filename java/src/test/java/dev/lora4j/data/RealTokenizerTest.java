package dev.lora4j.data;

import static org.junit.jupiter.api.Assertions.*;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.lora4j.tokenizer.Tokenizer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The data pipeline on the real Mistral-7B v0.1 tokenizer. */
class RealTokenizerTest {
  static final Path DIR = Path.of("src/test/resources/tokenizer-mistral-7b-v0.1");
  static final ObjectMapper JSON = new ObjectMapper();
  static TokenizerTextEncoder enc;

  @TempDir Path dir;

  @BeforeAll
  static void load() {
    enc = new TokenizerTextEncoder(Tokenizer.fromModelDir(DIR));
  }

  private List<TokenizedExample> read(DataConfig c, List<String> lines) throws Exception {
    Path f = dir.resolve("real.jsonl");
    Files.write(f, lines, StandardCharsets.UTF_8);
    List<TokenizedExample> out = new ArrayList<>();
    try (ExampleStream s = JsonlDataset.open(f, enc, null, c).examplesInFileOrder(null)) {
      s.forEachRemaining(out::add);
    }
    return out;
  }

  private static DataConfig cfg() {
    return DataConfig.builder().shuffleBuffer(0).prefetch(false).maxSeqLength(4096).build();
  }

  private static String line(String... kv) {
    ObjectNode o = JSON.createObjectNode();
    for (int i = 0; i < kv.length; i += 2) o.put(kv[i], kv[i + 1]);
    return o.toString();
  }

  private static int[] ints(JsonNode a) {
    int[] r = new int[a.size()];
    for (int i = 0; i < r.length; i++) r[i] = a.get(i).intValue();
    return r;
  }

  @Test
  void aPromptEndingInASpaceIsNotedWhereItsMaskCoversTheCompletionsStart() throws Exception {
    // "Answer: " alone ends in a "▁" token that "Answer: Paris" merges into "▁Paris": the mask of
    // the prompt's length covers it, as TRL's does (which warns); counted and noted here
    Path f = dir.resolve("pc.jsonl");
    Files.write(
        f,
        List.of(
            line("prompt", "Q: the capital of France? Answer: ", "completion", "Paris"),
            line("prompt", "Q: the capital of France? Answer:", "completion", " Paris")),
        StandardCharsets.UTF_8);
    DataStats stats = new DataStats();
    List<TokenizedExample> out = new ArrayList<>();
    try (ExampleStream s = JsonlDataset.open(f, enc, null, cfg()).examplesInFileOrder(stats)) {
      s.forEachRemaining(out::add);
    }
    assertEquals(1, stats.promptBoundaries());
    assertEquals(1, out.get(0).countedTokens(), "only the eos counts in the first");
    assertTrue(out.get(1).countedTokens() >= 2, "the second keeps ▁Paris");
    DataStats.Noted n = stats.noted().get(0);
    assertEquals(DataStats.Issue.PROMPT_BOUNDARY, n.issue());
    assertTrue(n.where().endsWith("pc.jsonl:1"), n.where());
    assertTrue(stats.report().describe().contains("prompt mask past the prompt"));
  }

  @Test
  void specialIds() {
    assertEquals(1, enc.bosId());
    assertEquals(2, enc.eosId());
    assertEquals(2, enc.padId(), "Mistral has no pad token: eos pads");
    assertEquals(32000, enc.vocabSize());
  }

  @Test
  void textLinesGiveTheReferenceIdsPlusEosLiterally() throws Exception {
    List<String> lines = new ArrayList<>();
    List<int[]> want = new ArrayList<>();
    for (String s : Files.readAllLines(DIR.resolve("cases.jsonl"), StandardCharsets.UTF_8)) {
      if (s.isBlank()) continue;
      JsonNode c = JSON.readTree(s);
      lines.add(line("text", c.get("text").asText()));
      int[] ids = ints(c.get("ids"));
      int[] w = Arrays.copyOf(ids, ids.length + 1);
      w[ids.length] = 2;
      want.add(w);
    }
    assertTrue(lines.size() > 100);
    List<TokenizedExample> got = read(cfg(), lines);
    assertEquals(want.size(), got.size());
    for (int i = 0; i < got.size(); i++) {
      assertArrayEquals(want.get(i), got.get(i).inputIds(), lines.get(i));
      assertArrayEquals(want.get(i), got.get(i).labels(), lines.get(i));
    }
  }

  @Test
  void controlTokenTextInDataIsNotAControlToken() throws Exception {
    TokenizedExample e =
        read(cfg(), List.of(line("text", "<s>[INST] literal special text </s>"))).get(0);
    assertArrayEquals(
        new int[] {
          1, 523, 28713, 28767, 28792, 16289, 28793, 20819, 2841, 2245, 1867, 28713, 28767, 2
        },
        e.inputIds());
  }

  @Test
  void promptCompletionMasksThePromptTokens() throws Exception {
    TokenizedExample e =
        read(cfg(), List.of(line("prompt", "Hello", "completion", " world"))).get(0);
    int[] full = enc.encodeText("Hello world", true);
    int[] prompt = enc.encodeText("Hello", true);
    assertArrayEquals(
        prompt, Arrays.copyOf(full, prompt.length), "the prompt's tokens start the whole text");
    int[] ids = Arrays.copyOf(full, full.length + 1);
    ids[full.length] = 2;
    assertArrayEquals(ids, e.inputIds());
    int[] labels = ids.clone();
    Arrays.fill(labels, 0, prompt.length, -100);
    assertArrayEquals(labels, e.labels());
    assertEquals(ids.length - prompt.length, e.countedTokens());
    assertArrayEquals(new int[] {1, 22557, 1526, 2}, e.inputIds());
    assertArrayEquals(new int[] {-100, -100, 1526, 2}, e.labels());
  }

  @Test
  void alpacaPromptIsMasked() throws Exception {
    TokenizedExample e =
        read(cfg(), List.of(line("instruction", "Add the numbers.", "input", "2 3", "output", "5")))
            .get(0);
    String prompt = AlpacaTemplate.prompt("Add the numbers.", "2 3");
    int[] promptIds = enc.encodeText(prompt, true);
    int[] full = enc.encodeText(prompt + "5", true);
    assertEquals(full.length + 1, e.length());
    assertArrayEquals(promptIds, Arrays.copyOf(e.inputIds(), promptIds.length));
    for (int t = 0; t < e.length(); t++) {
      assertEquals(t < promptIds.length ? -100 : e.inputIds()[t], e.labels()[t], "position " + t);
    }
    assertEquals(2, e.inputIds()[e.length() - 1]);
    assertTrue(e.countedTokens() >= 2, "the output and the eos count");
  }

  @Test
  void pretokenizedIdsCheckedAgainstTheVocabulary() throws Exception {
    assertEquals(1, read(cfg(), List.of("{\"input_ids\": [1, 31999, 2]}")).size());
    DataException e =
        assertThrows(
            DataException.class, () -> read(cfg(), List.of("{\"input_ids\": [1, 32000, 2]}")));
    assertTrue(
        e.getMessage().contains("real.jsonl:1") && e.getMessage().contains("32000"),
        e.getMessage());
  }
}
