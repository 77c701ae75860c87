package dev.lora4j.tokenizer;

import static org.junit.jupiter.api.Assertions.*;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.SplittableRandom;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The BPE cut into words and the words kept: the same ids and source spans as merging each
 * normalized piece whole, on random text built to reach every path (runs of spaces, the boundary
 * character written in the text, byte fallback, characters outside the BMP, added tokens, long
 * words past the cache's limit, words seen again).
 */
class TokenizerWordsTest {
  static final Path FILE = TokenizerTest.DIR.resolve("tokenizer.json");
  static Tokenizer words;
  static Tokenizer whole;

  @BeforeAll
  static void load() throws Exception {
    words = Tokenizer.fromFile(FILE);
    whole = Tokenizer.withoutWordSplit(FILE);
  }

  static final String[] PARTS = {
    "the",
    "The",
    " ",
    "  ",
    "   ",
    "\n",
    "\n\n",
    "\t",
    ",",
    ".",
    "!",
    "?",
    "'s",
    "-",
    "12",
    "7",
    "2026",
    "hello",
    "world",
    "Mistral",
    "tokenization",
    "un",
    "believ",
    "able",
    "ing",
    "é",
    "ü",
    "日本語",
    "中文",
    "😀",
    "🦙",
    "\u2581",
    "\u2581\u2581",
    "▁x",
    "<s>",
    "</s>",
    "[INST]",
    "[/INST]",
    "\u00a0",
    "\u200b",
    "\u0001",
    "\uffff",
    "a",
    "z",
    "Q",
    "_",
    "(",
    ")",
    "{",
    "}",
    "\"",
    "https://example.com/a?b=c",
    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
  };

  static String randomText(SplittableRandom r) {
    StringBuilder sb = new StringBuilder();
    int n = 1 + r.nextInt(40);
    for (int i = 0; i < n; i++) {
      if (r.nextInt(10) == 0) {
        // a random code point (unassigned and private-use ones included: byte fallback)
        int cp = r.nextInt(3) == 0 ? 0x10000 + r.nextInt(0x10000) : r.nextInt(0xD800);
        sb.appendCodePoint(cp);
      } else {
        sb.append(PARTS[r.nextInt(PARTS.length)]);
      }
    }
    return sb.toString();
  }

  static void same(String text) {
    assertArrayEquals(whole.encode(text, true), words.encode(text, true), text);
    assertArrayEquals(
        whole.encodeWithSpecialTokens(text, false),
        words.encodeWithSpecialTokens(text, false),
        text);
    Tokenizer.IntList[] a = spans(whole, text);
    Tokenizer.IntList[] b = spans(words, text);
    for (int k = 0; k < 3; k++) {
      assertArrayEquals(a[k].toArray(), b[k].toArray(), k + " of ids/starts/ends: " + text);
    }
  }

  /**
   * Each ordinary token's source span is the text it stands for: the span with " " as "▁" is the
   * token, or the token less the "▁" that the normalizer put before the piece (an empty span at the
   * piece's start); an added token's span is its content. Byte and unknown tokens are left out
   * (their span is the whole character they come from).
   */
  static void spansAreTheTokensText(Tokenizer t, String text) {
    Tokenizer.IntList[] r = spans(t, text);
    for (int k = 0; k < r[0].size(); k++) {
      int id = r[0].get(k);
      String tok = t.idToToken(id);
      String src = text.substring(r[1].get(k), r[2].get(k));
      if (t.isAddedToken(id)) {
        assertEquals(tok, src, "token " + k + " of " + text);
        continue;
      }
      if (t.byteValue(id) >= 0 || id == t.unkId()) continue;
      String norm = src.replace(' ', '\u2581');
      assertTrue(
          tok.equals(norm) || tok.equals("\u2581" + norm),
          "token " + k + " '" + tok + "' spans '" + src + "' in: " + text);
    }
  }

  static Tokenizer.IntList[] spans(Tokenizer t, String text) {
    Tokenizer.IntList ids = new Tokenizer.IntList(16);
    Tokenizer.IntList starts = new Tokenizer.IntList(16);
    Tokenizer.IntList ends = new Tokenizer.IntList(16);
    t.encodeParsingAddedTokens(text, 0, text.length(), ids, starts, ends);
    return new Tokenizer.IntList[] {ids, starts, ends};
  }

  @Test
  void mistralsVocabularyIsCutIntoWordsAndTheyAreKept() {
    assertTrue(words.splitsWords());
    assertFalse(whole.splitsWords());
    int before = words.wordsKept();
    words.encode("a sentence of several words, some of them new: zyxwvu", false);
    assertTrue(words.wordsKept() > before, "no word was kept");
    assertEquals(0, whole.wordsKept());
  }

  @Test
  void randomTextGivesTheIdsAndSpansOfTheWholePieces() {
    SplittableRandom r = new SplittableRandom(20261205);
    for (int i = 0; i < 3000; i++) {
      String text = randomText(r);
      same(text);
      same(text); // its words now come from the cache
      spansAreTheTokensText(words, text);
    }
  }

  @Test
  void longAndRepeatedWordsAndWhitespaceRuns() {
    same("x".repeat(47) + " " + "x".repeat(48) + " " + "x".repeat(49) + " " + "y".repeat(500));
    same(" ".repeat(100) + "a" + " ".repeat(3) + "b");
    same("\u2581".repeat(5) + "a\u2581b\u2581\u2581c" + "\u2581");
    same("word ".repeat(2000));
    StringBuilder doc = new StringBuilder();
    SplittableRandom r = new SplittableRandom(7);
    while (doc.length() < 200_000) doc.append(randomText(r)).append(' ');
    same(doc.toString());
  }

  /** A vocabulary with a merge that joins across a cut is merged whole, as before. */
  @Test
  void aMergeAcrossTheBoundaryKeepsPiecesWhole(@TempDir Path tmp) throws Exception {
    ObjectMapper om = new ObjectMapper();
    ObjectNode root = (ObjectNode) om.readTree(FILE.toFile());
    ObjectNode model = (ObjectNode) root.get("model");
    ObjectNode vocab = (ObjectNode) model.get("vocab");
    // "d" + "▁t" -> "d▁t": a token that spans the cut in "and the"
    int id = vocab.size(); // the next id
    vocab.put("d\u2581t", id);
    ArrayNode merges = (ArrayNode) model.get("merges");
    ArrayNode m = om.createArrayNode();
    if (merges.get(0).isArray()) {
      m.add("d").add("\u2581t");
      merges.insert(0, m);
    } else {
      merges.insert(0, "d \u2581t");
    }
    Path f = tmp.resolve("tokenizer.json");
    Files.writeString(f, om.writeValueAsString(root));
    Tokenizer crossing = Tokenizer.fromFile(f);
    assertFalse(crossing.splitsWords());
    int[] ids = crossing.encode("and the", false);
    boolean joined = false;
    for (int t : ids) joined |= t == id;
    assertTrue(joined, "the merge across the cut was not made: " + java.util.Arrays.toString(ids));
    assertArrayEquals(Tokenizer.withoutWordSplit(f).encode("and the", false), ids);
  }
}
