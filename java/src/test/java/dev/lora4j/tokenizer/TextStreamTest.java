package dev.lora4j.tokenizer;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/** The streamed pieces of a token sequence against one decode of the whole, Mistral's tokenizer. */
class TextStreamTest {
  static final Path DIR = Path.of("src/test/resources/tokenizer-mistral-7b-v0.1");
  static Tokenizer tok;
  static List<int[]> cases = new ArrayList<>();

  @BeforeAll
  static void load() throws IOException {
    tok = Tokenizer.fromModelDir(DIR);
    ObjectMapper om = new ObjectMapper();
    for (String line : Files.readAllLines(DIR.resolve("cases.jsonl"), StandardCharsets.UTF_8)) {
      if (line.isBlank()) continue;
      JsonNode c = om.readTree(line);
      for (String key : new String[] {"ids", "ids_special_tokens_parsed"}) {
        if (!c.has(key)) continue;
        int[] ids = new int[c.get(key).size()];
        for (int i = 0; i < ids.length; i++) ids[i] = c.get(key).get(i).asInt();
        cases.add(ids);
      }
    }
  }

  /** The pieces of ids pushed one by one, the flush's last. */
  static List<String> pieces(int[] ids, boolean skip) {
    TextStream s = new TextStream(tok, skip);
    List<String> out = new ArrayList<>();
    for (int id : ids) out.add(s.push(id));
    out.add(s.flush());
    return out;
  }

  static void assertJoinsToDecode(int[] ids, String what) {
    for (boolean skip : new boolean[] {true, false}) {
      assertEquals(
          tok.decode(ids, skip),
          String.join("", pieces(ids, skip)),
          what + ", skipSpecialTokens " + skip);
    }
  }

  @Test
  void fixtureCasesJoinToTheirDecode() {
    assertTrue(cases.size() >= 400, "cases read: " + cases.size());
    for (int k = 0; k < cases.size(); k++) assertJoinsToDecode(cases.get(k), "fixture case " + k);
  }

  @Test
  void randomSequencesWithBytesSpacesAndSpecialTokensJoinToTheirDecode() {
    SplittableRandom r = new SplittableRandom(7);
    int space = tok.tokenToId("\u2581");
    assertTrue(space > 0);
    for (int k = 0; k < 400; k++) {
      int[] ids = new int[1 + r.nextInt(60)];
      for (int i = 0; i < ids.length; i++) {
        int kind = r.nextInt(10);
        ids[i] =
            kind < 3
                ? 3 + r.nextInt(256) // a byte token <0x00>..<0xFF>
                : kind == 3 ? r.nextInt(3) : kind == 4 ? space : r.nextInt(tok.vocabSize());
      }
      assertJoinsToDecode(ids, "random sequence " + k);
    }
  }

  @Test
  void aCharacterSplitOverByteTokensComesOutWhole() {
    String text = "price: 5\u20ac, \u65e5\u672c\u8a9e, \ud83e\udd8a\ud83e\udd8a and \ud83d\ude00!";
    int[] ids = tok.encode(text, false);
    assertTrue(
        java.util.Arrays.stream(ids).filter(id -> tok.byteValue(id) >= 0).count() >= 8,
        "byte-fallback tokens expected");
    List<String> p = pieces(ids, true);
    assertEquals(text, String.join("", p));
    for (String piece : p) assertFalse(piece.contains("\uFFFD"), "piece '" + piece + "'");
  }

  @Test
  void anIncompleteRunAtTheEndComesOutInTheFlush() {
    int[] ids = tok.encode("a \ud83e\udd8a", false); // the fox as four byte tokens
    assertTrue(tok.byteValue(ids[ids.length - 1]) >= 0);
    int[] cut = java.util.Arrays.copyOf(ids, ids.length - 1); // its last byte gone
    TextStream s = new TextStream(tok, true);
    StringBuilder sb = new StringBuilder();
    for (int id : cut) sb.append(s.push(id));
    assertFalse(sb.toString().contains("\uFFFD"));
    String rest = s.flush();
    assertTrue(rest.endsWith("\uFFFD"), "flush gave '" + rest + "'");
    assertEquals(tok.decode(cut, true), sb + rest);
    assertEquals("", s.flush());
  }

  @Test
  void theWindowStaysShortOverALongText() {
    StringBuilder text = new StringBuilder();
    for (int i = 0; i < 400; i++) text.append("the keeper climbs ").append(i).append(" steps. ");
    int[] ids = tok.encode(text.toString(), false);
    assertTrue(ids.length > 2000);
    TextStream s = new TextStream(tok, true);
    StringBuilder sb = new StringBuilder();
    int widest = 0;
    for (int id : ids) {
      sb.append(s.push(id));
      widest = Math.max(widest, s.windowLength());
    }
    sb.append(s.flush());
    assertEquals(tok.decode(ids, true), sb.toString());
    assertTrue(widest <= 4, "widest window " + widest + " tokens");
  }

  @Test
  void anIdOutsideTheVocabularyIsRefusedAndChangesNothing() {
    TextStream s = new TextStream(tok, true);
    int[] ids = tok.encode("hello world", false);
    StringBuilder sb = new StringBuilder(s.push(ids[0]));
    IllegalArgumentException e =
        assertThrows(IllegalArgumentException.class, () -> s.push(tok.vocabSize()));
    assertTrue(e.getMessage().contains("outside the vocabulary"), e.getMessage());
    for (int i = 1; i < ids.length; i++) sb.append(s.push(ids[i]));
    sb.append(s.flush());
    assertEquals("hello world", sb.toString());
    assertEquals(ids.length, s.ids().length);
  }
}
