package dev.lora4j.tokenizer;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
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
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

class TokenizerTest {

  static final Path DIR = Path.of("src/test/resources/tokenizer-mistral-7b-v0.1");
  static Tokenizer tok;
  static List<JsonNode> cases;

  record Case(String text, int[] ids, int[] parsed) {}

  @BeforeAll
  static void load() throws IOException {
    tok = Tokenizer.fromModelDir(DIR);
    ObjectMapper om = new ObjectMapper();
    cases = new ArrayList<>();
    for (String line : Files.readAllLines(DIR.resolve("cases.jsonl"), StandardCharsets.UTF_8)) {
      if (!line.isBlank()) {
        cases.add(om.readTree(line));
      }
    }
  }

  static int[] ints(JsonNode arr) {
    int[] out = new int[arr.size()];
    for (int i = 0; i < out.length; i++) {
      out[i] = arr.get(i).asInt();
    }
    return out;
  }

  @Test
  void specialIdsAndVocabulary() {
    assertEquals(1, tok.bosId());
    assertEquals(2, tok.eosId());
    assertEquals(0, tok.unkId());
    assertEquals(-1, tok.padId());
    assertEquals(32000, tok.vocabSize());
    assertTrue(tok.isSpecial(0) && tok.isSpecial(1) && tok.isSpecial(2));
    assertFalse(tok.isSpecial(3));
    assertFalse(tok.isSpecial(28705));
    assertEquals(28705, tok.tokenToId("\u2581"));
    assertEquals("<0x0A>", tok.idToToken(13));
    assertEquals(13, tok.tokenToId("<0x0A>"));
    assertEquals(2, tok.tokenToId("</s>"));
    assertEquals(-1, tok.tokenToId("no such token"));
    assertThrows(IllegalArgumentException.class, () -> tok.idToToken(32000));
    assertThrows(IllegalArgumentException.class, () -> tok.idToToken(-1));
  }

  @Test
  void allCasesLiteral() {
    assertEquals(402, cases.size());
    int ok = 0;
    List<String> failures = new ArrayList<>();
    for (JsonNode c : cases) {
      String text = c.get("text").asText();
      int[] expected = ints(c.get("ids"));
      int[] got = tok.encode(text, true);
      if (java.util.Arrays.equals(expected, got)) {
        ok++;
      } else if (failures.size() < 5) {
        failures.add(
            text
                + "\n expected "
                + java.util.Arrays.toString(expected)
                + "\n got      "
                + java.util.Arrays.toString(got));
      }
    }
    assertEquals(cases.size(), ok, String.join("\n", failures));
  }

  @Test
  void casesWithSpecialTokensParsed() {
    int n = 0;
    for (JsonNode c : cases) {
      if (c.has("ids_special_tokens_parsed")) {
        String text = c.get("text").asText();
        assertArrayEquals(
            ints(c.get("ids_special_tokens_parsed")),
            tok.encodeWithSpecialTokens(text, true),
            text);
        // and the literal ids differ: the text was not allowed to forge control tokens
        assertFalse(
            java.util.Arrays.equals(ints(c.get("ids")), tok.encodeWithSpecialTokens(text, true)));
        n++;
      } else {
        // without special-token text both ways agree
        String text = c.get("text").asText();
        assertArrayEquals(tok.encode(text, true), tok.encodeWithSpecialTokens(text, true), text);
      }
    }
    assertEquals(2, n);
  }

  @Test
  void roundTripAllCases() {
    // HF: the normalizer prepends one "▁" and the decoder strips one leading space, so
    // decode(encode(x), skip specials) == x for every case (no case contains a literal "▁").
    for (JsonNode c : cases) {
      String text = c.get("text").asText();
      assertFalse(text.contains("\u2581"));
      assertEquals(text, tok.decode(tok.encode(text, true), true), text);
      assertEquals(text, tok.decode(tok.encode(text, false), false), text);
    }
  }

  @Test
  void decodeKeepsSpecialTokensWhenAsked() {
    // HF fast Llama/Mistral: "<s>" then " Hello"; only the first char of the whole text is stripped
    assertEquals("<s> Hello world</s>", tok.decode(new int[] {1, 22557, 1526, 2}, false));
    assertEquals("Hello world", tok.decode(new int[] {1, 22557, 1526, 2}, true));
    assertArrayEquals(new int[] {1, 22557, 1526}, tok.encode("Hello world", true));
    // leading spaces: one is the prepended "▁", the others are kept
    assertArrayEquals(new int[] {28705, 22557}, tok.encode(" Hello", false));
    assertEquals(" Hello", tok.decode(tok.encode(" Hello", false), true));
  }

  @Test
  void emptyText() {
    assertArrayEquals(new int[] {1}, tok.encode("", true));
    assertArrayEquals(new int[0], tok.encode("", false));
    assertArrayEquals(new int[] {1, 2}, tok.encodeWithSpecialTokens("<s></s>", false));
    assertEquals("", tok.decode(new int[0], true));
  }

  @Test
  void byteFallbackAndUtf8Reassembly() {
    String text = "flamingo \uD83E\uDDA9 and \u4E2D\u6587 and tab\tnewline\n";
    int[] ids = tok.encode(text, false);
    // U+1F9A9 is not in the vocabulary: four byte tokens F0 9F A6 A9
    int f0 = tok.tokenToId("<0xF0>");
    boolean found = false;
    for (int i = 0; i + 3 < ids.length; i++) {
      if (ids[i] == f0) {
        assertEquals("<0x9F>", tok.idToToken(ids[i + 1]));
        assertEquals("<0xA6>", tok.idToToken(ids[i + 2]));
        assertEquals("<0xA9>", tok.idToToken(ids[i + 3]));
        found = true;
      }
    }
    assertTrue(found);
    assertEquals(text, tok.decode(ids, true));
    // an invalid byte run decodes to one U+FFFD per byte, as HF's ByteFallback decoder does
    assertEquals(
        "a\uFFFD\uFFFD",
        tok.decode(new int[] {tok.tokenToId("a"), f0, tok.tokenToId("<0x9F>")}, true));
  }

  @Test
  void metaspacePreTokenizerVariant(@org.junit.jupiter.api.io.TempDir Path tmp) throws IOException {
    // the layout of newer Mistral/Llama files (legacy=false): no normalizer, a Metaspace
    // pre-tokenizer that prepends "▁" only to the start of the text and does not split
    ObjectMapper om = new ObjectMapper();
    com.fasterxml.jackson.databind.node.ObjectNode root =
        (com.fasterxml.jackson.databind.node.ObjectNode)
            om.readTree(DIR.resolve("tokenizer.json").toFile());
    root.putNull("normalizer");
    root.set(
        "pre_tokenizer",
        om.readTree(
            "{\"type\": \"Metaspace\", \"replacement\": \"\u2581\", "
                + "\"prepend_scheme\": \"first\", \"split\": false}"));
    root.set(
        "decoder",
        om.readTree(
            "{\"type\": \"Metaspace\", \"replacement\": \"\u2581\", "
                + "\"prepend_scheme\": \"first\", \"split\": false}"));
    Files.writeString(tmp.resolve("tokenizer.json"), om.writeValueAsString(root));
    Tokenizer meta = Tokenizer.fromModelDir(tmp);
    // same ids as the legacy pipeline when the text does not start with a space
    for (JsonNode c : cases) {
      String text = c.get("text").asText();
      if (!text.startsWith(" ") && !text.contains("<")) {
        assertArrayEquals(ints(c.get("ids")), meta.encode(text, true), text);
      }
    }
    // a leading space is not doubled: " Hello" -> "▁Hello" (legacy: "▁", "▁Hello")
    assertArrayEquals(new int[] {22557}, meta.encode(" Hello", false));
    assertArrayEquals(new int[] {28705, 22557}, tok.encode(" Hello", false));
    // after a control token no "▁" is prepended (prepend_scheme first), unlike the legacy
    // normalizer
    assertArrayEquals(new int[] {1, 16230}, meta.encodeWithSpecialTokens("<s>Hello", false));
    assertArrayEquals(new int[] {1, 22557}, tok.encodeWithSpecialTokens("<s>Hello", false));
    assertEquals("Hello world", meta.decode(meta.encode("Hello world", true), true));
  }

  @Test
  void encodeSpeed() {
    StringBuilder sb = new StringBuilder();
    while (sb.length() < 4_000_000) {
      for (JsonNode c : cases) {
        sb.append(c.get("text").asText()).append('\n');
      }
    }
    String text = sb.toString();
    String[] lines = text.split("\n");
    tok.encode(text.substring(0, 200_000), false); // warm-up
    long t0 = System.nanoTime();
    long tokens = 0;
    for (String line : lines) {
      tokens += tok.encode(line, false).length;
    }
    double s1 = (System.nanoTime() - t0) / 1e9;
    long t1 = System.nanoTime();
    int[] whole = tok.encode(text, false); // one 4 MB document: one BPE "word" of 4M symbols
    double s2 = (System.nanoTime() - t1) / 1e9;
    System.out.printf(
        "encode speed: %d lines, %.1f MB, %d tokens in %.2f s = %.0f tokens/s; "
            + "as one document %d tokens in %.2f s = %.0f tokens/s%n",
        lines.length,
        text.length() / 1e6,
        tokens,
        s1,
        tokens / s1,
        whole.length,
        s2,
        whole.length / s2);
    assertEquals(text, tok.decode(whole, true));
    assertTrue(tokens / s1 > 100_000, "too slow: " + tokens / s1 + " tokens/s");
  }

  @Test
  void aTokenizerFileWithoutItsModelSectionIsNamed(@org.junit.jupiter.api.io.TempDir Path tmp)
      throws IOException {
    ObjectMapper json = new ObjectMapper();
    com.fasterxml.jackson.databind.node.ObjectNode root =
        (com.fasterxml.jackson.databind.node.ObjectNode)
            json.readTree(DIR.resolve("tokenizer.json").toFile());
    root.remove("model");
    Path file = tmp.resolve("tokenizer.json");
    json.writeValue(file.toFile(), root);
    var e = assertThrows(dev.lora4j.Lora4jException.class, () -> Tokenizer.fromFile(file));
    assertTrue(e.getMessage().startsWith(file + ": has no \"model\" section"), e.getMessage());
    Files.writeString(file, "{\"model\": {\"type\": \"BPE\", \"vocab\": {}, \"merges\": []}}");
    var e2 = assertThrows(dev.lora4j.Lora4jException.class, () -> Tokenizer.fromFile(file));
    assertTrue(e2.getMessage().contains("no \"vocab\""), e2.getMessage());
  }
}
