package dev.lora4j.data;

import static dev.lora4j.data.Fakes.*;
import static org.junit.jupiter.api.Assertions.*;

import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class ErrorTest {
  @TempDir Path dir;

  private DataException fails(DataConfig config, String name, String... lines) {
    Path f = write(dir, name, lines);
    return assertThrows(DataException.class, () -> readAll(open(f, config)));
  }

  private static void says(dev.lora4j.Lora4jException e, String... parts) {
    for (String p : parts)
      assertTrue(e.getMessage().contains(p), "'" + p + "' not in: " + e.getMessage());
  }

  @Test
  void malformedJsonNamesFileAndLine() {
    says(
        fails(
            cfg().build(),
            "bad.jsonl",
            "{\"text\": \"a\"}",
            "{\"text\": \"b\"}",
            "{\"text\": \"c\""),
        "bad.jsonl:3",
        "malformed JSON");
    says(
        fails(cfg().build(), "trail.jsonl", "{\"text\": \"a\"} x"),
        "trail.jsonl:1",
        "malformed JSON");
    // the parser's reason with the column, without its source placeholder, on one line; the hint
    // names the setting a Java caller has (TrainingConfig's; the command line rewrites it)
    DataException cut = fails(cfg().build(), "cut.jsonl", "{\"text\": \"abc\"}", "{\"text\": \"ab");
    says(cut, "cut.jsonl:2", "malformed JSON", "column", "skipInvalidLines(true)");
    assertFalse(cut.getMessage().contains("Source:"), cut.getMessage());
    assertFalse(cut.getMessage().contains("\n"), cut.getMessage());
    assertDoesNotThrow(
        () -> dev.lora4j.TrainingConfig.Builder.class.getMethod("skipInvalidLines", boolean.class));
    says(
        fails(cfg().build(), "arr.jsonl", "{\"text\": \"a\"}", "[1, 2]"),
        "arr.jsonl:2",
        "expected a JSON object");
  }

  @Test
  void keysGivenTwiceMisspeltOrHoldingNoTextAreNamed() {
    // a key given twice: the earlier value would be lost without a word
    says(
        fails(
            cfg().build(), "dup.jsonl", "{\"text\": \"a\"}", "{\"text\": \"a\", \"text\": \"b\"}"),
        "dup.jsonl:2",
        "Duplicate field 'text'");
    // one letter away from an optional key: it would be ignored (the labels' -100 masking, or the
    // Alpaca input, dropped)
    says(
        fails(
            cfg().build(),
            "label.jsonl",
            "{\"input_ids\": [1, 2, 3]}",
            "{\"input_ids\": [1, 2, 3], \"label\": [-100, 2, 3]}"),
        "label.jsonl:2",
        "unknown key 'label': did you mean 'labels'?");
    says(
        fails(
            cfg().build(),
            "inputs.jsonl",
            "{\"instruction\": \"a\", \"Inputs\": \"3\", \"output\": \"b\"}"),
        "inputs.jsonl:1",
        "did you mean 'input'?");
    // other unknown keys are ignored
    assertEquals(
        1,
        readAll(
                open(
                    write(
                        dir,
                        "extra.jsonl",
                        "{\"text\": \"a\", \"id\": 7, \"source\": \"x\", \"meta\": {}}"),
                    cfg().build()))
            .size());
    // a lone surrogate escape is no text
    says(
        fails(
            cfg().build(),
            "sur.jsonl",
            "{\"text\": \"ok \\ud83d\\ude00\"}",
            "{\"text\": \"bad \\ud800 here\"}"),
        "sur.jsonl:2",
        "field 'text' holds an unpaired UTF-16 surrogate (\\uD800) at character 4");
  }

  @Test
  void aLongLineIsReadAndCut() {
    // longer than Jackson's default string limit (20 M characters): read, then cut to the length
    String big = "x ".repeat(10_500_000);
    List<TokenizedExample> got =
        readAll(open(write(dir, "big.jsonl", "{\"text\": \"" + big + "\"}"), cfg().build()));
    assertEquals(1, got.size());
  }

  @Test
  void missingFieldNamesIt() {
    says(
        fails(
            cfg().build(),
            "miss.jsonl",
            "{\"prompt\": \"a\", \"completion\": \"b\"}",
            "{\"prompt\": \"a\"}"),
        "miss.jsonl:2",
        "missing field 'completion'");
    says(
        fails(
            cfg().build(),
            "alp.jsonl",
            "{\"instruction\": \"a\", \"output\": \"b\"}",
            "{\"output\": \"b\"}"),
        "alp.jsonl:2",
        "'instruction'");
    says(
        fails(cfg().build(), "msg.jsonl", "{\"messages\": [{\"role\": \"user\"}]}"),
        "msg.jsonl:1",
        "messages[0].content");
  }

  @Test
  void wrongTypes() {
    says(
        fails(cfg().build(), "t.jsonl", "{\"text\": 5}"),
        "t.jsonl:1",
        "'text' must be a string, got a number");
    says(
        fails(cfg().build(), "m.jsonl", "{\"messages\": \"hi\"}"),
        "m.jsonl:1",
        "'messages' must be an array");
    says(
        fails(cfg().build(), "p.jsonl", "{\"input_ids\": \"abc\"}"),
        "p.jsonl:1",
        "'input_ids' must be an array");
    says(
        fails(cfg().build(), "q.jsonl", "{\"input_ids\": [1, 2.5]}"),
        "q.jsonl:1",
        "input_ids[1] must be an integer");
    says(
        fails(cfg().build(), "l.jsonl", "{\"input_ids\": [1, 2], \"labels\": [1]}"),
        "l.jsonl:1",
        "'labels' has 1 values");
  }

  @Test
  void idsOutsideTheVocabulary() {
    says(
        fails(cfg().build(), "v.jsonl", "{\"input_ids\": [4, 300]}"),
        "v.jsonl:1",
        "input_ids[1] = 300",
        "259");
    says(
        fails(cfg().build(), "n.jsonl", "{\"input_ids\": [4, -100]}"),
        "n.jsonl:1",
        "input_ids[1] = -100");
    says(
        fails(cfg().build(), "w.jsonl", "{\"input_ids\": [4, 5], \"labels\": [4, -5]}"),
        "w.jsonl:1",
        "labels[1] = -5");
  }

  @Test
  void unknownRole() {
    says(
        fails(
            cfg().build(),
            "r.jsonl",
            "{\"messages\": [{\"role\": \"user\", \"content\": \"a\"}, {\"role\": \"assistant\","
                + " \"content\": \"b\"}]}",
            "{\"messages\": [{\"role\": \"user\", \"content\": \"a\"}, {\"role\": \"bot\","
                + " \"content\": \"b\"}]}"),
        "r.jsonl:2",
        "unknown role 'bot'");
  }

  @Test
  void undetectableFormat() {
    says(
        fails(cfg().build(), "u.jsonl", "{\"foo\": 1}"),
        "u.jsonl:1",
        "cannot tell the data format",
        "[foo]");
  }

  @Test
  void emptyDatasetNamesTheFile() {
    says(fails(cfg().build(), "empty.jsonl"), "empty.jsonl", "no valid example");
    says(fails(cfg().build(), "blank.jsonl", "", "  "), "blank.jsonl", "no valid example");
    // every line skipped: still empty
    says(
        fails(cfg().skipInvalid(true).build(), "allbad.jsonl", "{", "{"),
        "allbad.jsonl",
        "no valid example");
    says(
        fails(cfg().build(), "masked.jsonl", "{\"input_ids\": [4, 5], \"labels\": [-100, -100]}"),
        "masked.jsonl",
        "no valid example");
  }

  @Test
  void aValidationFractionThatHoldsOutNoLineSaysWhy() {
    // 3 lines at a fraction of 0.01: by the hash, none is held out
    DataConfig c = cfg().validationFraction(0.01).build();
    java.nio.file.Path f =
        write(dir, "small.jsonl", "{\"text\": \"a\"}", "{\"text\": \"b\"}", "{\"text\": \"c\"}");
    DataException e = assertThrows(DataException.class, () -> readAll(open(f, c).validation()));
    says(
        e,
        "small.jsonl",
        "no valid example",
        "none of the file's lines fell in this split",
        "a larger fraction");
    // the training split when every line is held out: the other way round
    DataConfig most = cfg().validationFraction(0.9999).build();
    DataException t = assertThrows(DataException.class, () -> readAll(open(f, most).train()));
    says(t, "every line of the file fell in the validation split", "a smaller fraction");
    // a file of blank lines read whole: no word of splits
    DataException b =
        assertThrows(
            DataException.class,
            () -> readAll(open(write(dir, "blank2.jsonl", "", " "), cfg().build())));
    assertFalse(b.getMessage().contains("split"), b.getMessage());
  }

  @Test
  void skipInvalidCountsAndReportsTheFirstLines() {
    String good = "{\"text\": \"ok\"}";
    String[] lines = new String[30];
    for (int i = 0; i < 30; i++) lines[i] = (i % 2 == 1) ? "{broken" : good;
    Path f = write(dir, "skip.jsonl", lines);
    JsonlDataset ds = open(f, cfg().skipInvalid(true).build());
    DataStats s = ds.scan();
    assertEquals(15, s.examples());
    assertEquals(15, s.skipped(DataStats.SkipReason.INVALID));
    assertEquals(30, s.lines());
    List<String> first = s.invalidLines();
    assertEquals(DataStats.MAX_REPORTED_INVALID, first.size());
    assertTrue(first.get(0).contains("skip.jsonl:2:"), first.get(0));
    assertTrue(first.get(1).contains("skip.jsonl:4:"), first.get(1));
    assertTrue(s.toString().contains("15 invalid"), s.toString());
  }

  @Test
  void overlongExamplesAreTruncatedAndCounted() {
    Path f = write(dir, "long.jsonl", "{\"text\": \"abcdef\"}", "{\"text\": \"a\"}");
    DataStats stats = new DataStats();
    List<TokenizedExample> all;
    try (ExampleStream s = open(f, cfg().maxSeqLength(4).build()).examplesInFileOrder(stats)) {
      all = new java.util.ArrayList<>();
      s.forEachRemaining(all::add);
    }
    assertArrayEquals(new int[] {1, 100, 101, 102}, all.get(0).inputIds());
    assertArrayEquals(text("a"), all.get(1).inputIds());
    assertEquals(1, stats.truncated());
    assertEquals(2, stats.examples());
    assertEquals(7, stats.tokens());
    assertEquals(5, stats.labelTokens());
  }

  @Test
  void overlongExamplesDroppedWhenConfigured() {
    Path f = write(dir, "long.jsonl", "{\"text\": \"abcdef\"}", "{\"text\": \"a\"}");
    DataStats s = open(f, cfg().maxSeqLength(4).dropOverlong(true).build()).scan();
    assertEquals(1, s.examples());
    assertEquals(1, s.skipped(DataStats.SkipReason.TOO_LONG));
    assertEquals(0, s.truncated());
  }

  @Test
  void examplesWithoutLabelsAreSkippedAndCounted() {
    Path f =
        write(
            dir,
            "nolab.jsonl",
            "{\"prompt\": \"abcdefgh\", \"completion\": \"x\"}", // prompt fills maxSeqLength:
            // nothing left
            "{\"prompt\": \"a\", \"completion\": \"x\"}",
            "{\"prompt\": \"a\", \"completion\": \"x\", \"unused\": 1}");
    DataStats s = open(f, cfg().maxSeqLength(6).build()).scan();
    assertEquals(2, s.examples());
    assertEquals(1, s.skipped(DataStats.SkipReason.NO_LABELS));
    assertEquals(0, s.truncated()); // a line cut to nothing that counts is a drop, not also a cut
  }

  @Test
  void chatTemplateRejectionNamesTheLine() {
    ChatEncoder strict =
        (m, c, src) -> {
          throw new dev.lora4j.tokenizer.ChatTemplateException("roles must alternate");
        };
    Path f = write(dir, "alt.jsonl", "{\"messages\": [{\"role\": \"user\", \"content\": \"a\"}]}");
    DataException e =
        assertThrows(
            DataException.class,
            () -> {
              try (ExampleStream s =
                  JsonlDataset.open(f, BYTES, strict, cfg().build()).examplesInFileOrder(null)) {
                s.next();
              }
            });
    says(e, "alt.jsonl:1", "roles must alternate");
    // a model without a chat template fails every chat line alike: an error that stops the pass
    // (naming the first line), not a bad line that skipInvalid would drop with all the others
    for (boolean skip : new boolean[] {false, true}) {
      dev.lora4j.Lora4jException none =
          assertThrows(
              dev.lora4j.Lora4jException.class,
              () -> {
                try (ExampleStream s =
                    JsonlDataset.open(f, BYTES, null, cfg().skipInvalid(skip).build())
                        .examplesInFileOrder(null)) {
                  s.next();
                }
              });
      assertFalse(none instanceof DataException, none.toString());
      says(none, "alt.jsonl:1", "chat template");
    }
  }

  @Test
  void missingFile() {
    DataException e =
        assertThrows(DataException.class, () -> open(dir.resolve("nope.jsonl"), cfg().build()));
    says(e, "nope.jsonl");
  }

  @Test
  void undecodableLinesAreBadLinesWithTheirNumber() throws Exception {
    byte[] good = "{\"text\": \"ok\"}\n".getBytes(java.nio.charset.StandardCharsets.UTF_8);
    java.io.ByteArrayOutputStream b = new java.io.ByteArrayOutputStream();
    b.write(good);
    b.write(new byte[] {'{', '"', 't', 'e', 'x', 't', '"', ':', '"', (byte) 0xFF, '"', '}', '\n'});
    b.write(new byte[] {'{', 0, '"', 't', '"', '}', '\n'});
    b.write(good);
    Path f = dir.resolve("enc.jsonl");
    java.nio.file.Files.write(f, b.toByteArray());
    DataException e = assertThrows(DataException.class, () -> open(f, cfg().build()).scan());
    says(e, "enc.jsonl:2", "not UTF-8 text", "byte 0xFF at byte 10");
    DataStats s = open(f, cfg().skipInvalid(true).build()).scan();
    assertEquals(2, s.examples());
    assertEquals(2, s.skipped(DataStats.SkipReason.ENCODING));
    assertEquals(0, s.skipped(DataStats.SkipReason.INVALID));
    List<DataStats.Noted> noted = s.noted();
    assertEquals(2, noted.size());
    assertTrue(
        noted.get(0).where().endsWith("enc.jsonl:2")
            && noted.get(0).issue() == DataStats.Issue.ENCODING,
        noted.toString());
    assertTrue(
        noted.get(1).where().endsWith("enc.jsonl:3") && noted.get(1).detail().contains("NUL byte"),
        noted.toString());
    DataReport r = s.report();
    assertEquals(2, r.dropped());
    assertTrue(
        r.describe().startsWith("4 lines: 2 examples; dropped 2 (2 not UTF-8)"), r.describe());
  }

  @Test
  void theReportKeepsTheFirstFewOfEachKind() {
    String[] lines = new String[20];
    for (int i = 0; i < 20; i++) lines[i] = i % 2 == 0 ? "{\"text\": \"abcdef\"}" : "{broken";
    DataStats s =
        open(write(dir, "many.jsonl", lines), cfg().maxSeqLength(4).skipInvalid(true).build())
            .scan();
    assertEquals(10, s.truncated());
    assertEquals(10, s.skipped(DataStats.SkipReason.INVALID));
    List<DataStats.Noted> noted = s.noted();
    assertEquals(2 * DataStats.MAX_NOTED, noted.size());
    assertEquals(DataStats.Issue.INVALID, noted.get(0).issue());
    assertTrue(noted.get(0).where().endsWith("many.jsonl:2"), noted.get(0).toString());
    assertTrue(
        noted
            .get(DataStats.MAX_NOTED)
            .toString()
            .endsWith("many.jsonl:1: truncated: 8 tokens cut to maxSeqLength 4"),
        noted.get(DataStats.MAX_NOTED).toString());
  }
}
