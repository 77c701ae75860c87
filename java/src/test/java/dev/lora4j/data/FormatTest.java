package dev.lora4j.data;

import static dev.lora4j.data.Fakes.*;
import static org.junit.jupiter.api.Assertions.*;

import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class FormatTest {
  @TempDir Path dir;

  private TokenizedExample one(DataConfig config, String line) {
    List<TokenizedExample> all = readAll(open(write(dir, "d.jsonl", line), config));
    assertEquals(1, all.size());
    return all.get(0);
  }

  private TokenizedExample one(String line) {
    return one(cfg().build(), line);
  }

  @Test
  void textIsBosTextEosAllCounted() {
    TokenizedExample e = one("{\"text\": \"hi\"}");
    assertArrayEquals(new int[] {1, 107, 108, 2}, e.inputIds());
    assertArrayEquals(new int[] {1, 107, 108, 2}, e.labels());
    assertTrue(e.source().endsWith("d.jsonl:1"), e.source());
  }

  @Test
  void controlTokenSpellingsInDataAreLiteral() {
    TokenizedExample e = one("{\"text\": \"<s></s>\"}");
    assertArrayEquals(concat(new int[] {1}, bytes("<s></s>"), new int[] {2}), e.inputIds());
    // exactly one bos and one eos: the ones the format adds
    assertEquals(1, java.util.Arrays.stream(e.inputIds()).filter(i -> i == 1).count());
    assertEquals(1, java.util.Arrays.stream(e.inputIds()).filter(i -> i == 2).count());
  }

  @Test
  void promptCompletionMasksThePrompt() {
    TokenizedExample e = one("{\"prompt\": \"ab\", \"completion\": \"c\"}");
    assertArrayEquals(new int[] {1, 100, 101, 102, 2}, e.inputIds());
    assertArrayEquals(new int[] {-100, -100, -100, 102, 2}, e.labels());
    assertEquals(2, e.countedTokens());
  }

  @Test
  void promptCompletionCountsEverythingWhenNotCompletionsOnly() {
    TokenizedExample e =
        one(cfg().completionsOnly(false).build(), "{\"prompt\": \"ab\", \"completion\": \"c\"}");
    assertArrayEquals(new int[] {1, 100, 101, 102, 2}, e.labels());
  }

  @Test
  void alpacaWithoutInput() {
    String prompt =
        "Below is an instruction that describes a task. Write a response that appropriately"
            + " completes the request.\n\n### Instruction:\nSay ok\n\n### Response:\n";
    assertEquals(prompt, AlpacaTemplate.prompt("Say ok", null));
    assertEquals(prompt, AlpacaTemplate.prompt("Say ok", ""));
    TokenizedExample e = one("{\"instruction\": \"Say ok\", \"input\": \"\", \"output\": \"ok\"}");
    int[] ids = concat(new int[] {1}, bytes(prompt), bytes("ok"), new int[] {2});
    assertArrayEquals(ids, e.inputIds());
    int p = 1 + bytes(prompt).length;
    assertArrayEquals(concat(ignore(p), bytes("ok"), new int[] {2}), e.labels());
  }

  @Test
  void alpacaWithInput() {
    String prompt =
        "Below is an instruction that describes a task, paired with an input that provides"
            + " further context. Write a response that appropriately completes the request.\n\n"
            + "### Instruction:\nAdd\n\n### Input:\n1 2\n\n### Response:\n";
    TokenizedExample e = one("{\"instruction\": \"Add\", \"input\": \"1 2\", \"output\": \"3\"}");
    assertArrayEquals(
        concat(new int[] {1}, bytes(prompt), bytes("3"), new int[] {2}), e.inputIds());
    assertArrayEquals(
        concat(ignore(1 + bytes(prompt).length), bytes("3"), new int[] {2}), e.labels());
  }

  @Test
  void chatCountsOnlyAssistantTurnsAndTheirEos() {
    TokenizedExample e =
        one(
            "{\"messages\": [{\"role\": \"system\", \"content\": \"s\"},"
                + " {\"role\": \"user\", \"content\": \"q\"},"
                + " {\"role\": \"assistant\", \"content\": \"a\"}]}");
    int[] ids =
        concat(
            new int[] {1},
            bytes("[system]s"),
            bytes("[user]q"),
            bytes("[assistant]a"),
            new int[] {2});
    assertArrayEquals(ids, e.inputIds());
    int masked = 1 + bytes("[system]s[user]q[assistant]").length;
    assertArrayEquals(concat(ignore(masked), bytes("a"), new int[] {2}), e.labels());
  }

  @Test
  void shareGptConversationsReadAsMessages() {
    // TRL's maybe_convert_to_chatml: "conversations" for "messages", "from" / "value" for
    // "role" / "content" (the roles themselves are not renamed)
    TokenizedExample m =
        one(
            "{\"messages\": [{\"role\": \"user\", \"content\": \"q\"}, {\"role\":"
                + " \"assistant\", \"content\": \"a\"}]}");
    TokenizedExample c =
        one(
            "{\"conversations\": [{\"from\": \"user\", \"value\": \"q\"}, {\"from\":"
                + " \"assistant\", \"value\": \"a\"}]}");
    assertArrayEquals(m.inputIds(), c.inputIds());
    assertArrayEquals(m.labels(), c.labels());
    DataException e =
        assertThrows(
            DataException.class,
            () ->
                readAll(
                    open(
                        write(
                            dir,
                            "h.jsonl",
                            "{\"conversations\": [{\"from\": \"human\", \"value\": \"q\"}]}"),
                        cfg().build())));
    assertTrue(
        e.getMessage().contains("conversations[0] has unknown role 'human'"), e.getMessage());
  }

  @Test
  void aChatEncoderWithoutTheCompletionFormRefusesConversationalPromptCompletion() {
    DataException e =
        assertThrows(
            DataException.class,
            () ->
                one(
                    "{\"prompt\": [{\"role\": \"user\", \"content\": \"q\"}], \"completion\":"
                        + " [{\"role\": \"assistant\", \"content\": \"a\"}]}"));
    assertTrue(
        e.getMessage().contains("does not encode conversational prompt / completion lines"),
        e.getMessage());
  }

  @Test
  void pretokenizedAsGiven() {
    TokenizedExample e = one("{\"input_ids\": [5, 6, 7], \"labels\": [-100, 6, 7]}");
    assertArrayEquals(new int[] {5, 6, 7}, e.inputIds());
    assertArrayEquals(new int[] {-100, 6, 7}, e.labels());
    TokenizedExample f = one("{\"input_ids\": [5, 6, 7], \"attention_mask\": [1, 1, 1]}");
    assertArrayEquals(new int[] {5, 6, 7}, f.labels());
  }

  @Test
  void pretokenizedMaskColumnsMaskUnderCompletionsOnly() {
    // TRL's completion_mask / assistant_masks: 0 does not count when training on completions
    String line =
        "{\"input_ids\": [5, 6, 7, 8], \"labels\": [5, -100, 7, 8], \"completion_mask\": [0, 1,"
            + " 1, 1], \"assistant_masks\": [1, 1, 1, 0]}";
    assertArrayEquals(
        new int[] {-100, -100, 7, -100}, one(cfg().completionsOnly(true).build(), line).labels());
    // without completions only they are ignored, as TRL ignores them then
    assertArrayEquals(
        new int[] {5, -100, 7, 8}, one(cfg().completionsOnly(false).build(), line).labels());
    assertArrayEquals(
        new int[] {-100, 6},
        one(
                cfg().completionsOnly(true).build(),
                "{\"input_ids\": [5, 6], \"completion_mask\": [0, 1]}")
            .labels());
  }

  @Test
  void aBadMaskColumnNamesItsValue() {
    for (String[] c :
        new String[][] {
          {"{\"input_ids\": [5, 6], \"completion_mask\": [0]}", "has 1 values but"},
          {
            "{\"input_ids\": [5, 6], \"assistant_masks\": [0, 2]}",
            "assistant_masks[1] must be 0 or 1"
          },
          {"{\"input_ids\": [5, 6], \"completion_mask\": \"01\"}", "must be an array"},
          {
            "{\"input_ids\": [5, 6], \"completion_masks\": [0, 1]}",
            "did you mean 'completion_mask'"
          },
        }) {
      DataException e =
          assertThrows(
              DataException.class,
              () ->
                  readAll(open(write(dir, "m.jsonl", c[0]), cfg().completionsOnly(true).build())));
      assertTrue(
          e.getMessage().contains("m.jsonl:1") && e.getMessage().contains(c[1]), e.getMessage());
    }
  }

  @Test
  void detectsEachFormatFromTheFirstValidLine() {
    String[][] cases = {
      {"{\"text\": \"x\"}", "TEXT"},
      {"{\"prompt\": \"x\", \"completion\": \"y\"}", "PROMPT_COMPLETION"},
      {"{\"instruction\": \"x\", \"output\": \"y\"}", "ALPACA"},
      {
        "{\"messages\": [{\"role\": \"user\", \"content\": \"x\"}, {\"role\": \"assistant\","
            + " \"content\": \"y\"}]}",
        "CHAT"
      },
      {"{\"input_ids\": [4, 5]}", "PRETOKENIZED"},
    };
    for (String[] c : cases) {
      JsonlDataset ds = open(write(dir, "f.jsonl", "", c[0], c[0]), cfg().build());
      assertEquals(DataFormat.valueOf(c[1]), ds.format(), c[0]);
      assertEquals(2, readAll(ds).size(), c[0]);
    }
  }

  @Test
  void overrideWinsOverDetection() {
    String line = "{\"text\": \"t\", \"prompt\": \"p\", \"completion\": \"c\"}";
    Path f = write(dir, "both.jsonl", line);
    assertEquals(DataFormat.PROMPT_COMPLETION, open(f, cfg().build()).format());
    assertArrayEquals(
        new int[] {1, bytes("p")[0], bytes("c")[0], 2},
        readAll(open(f, cfg().build())).get(0).inputIds());
    DataConfig text = cfg().format(DataFormat.TEXT).build();
    assertEquals(DataFormat.TEXT, open(f, text).format());
    assertArrayEquals(text("t"), readAll(open(f, text)).get(0).inputIds());
  }

  @Test
  void overrideRequiresItsFields() {
    Path f = write(dir, "over.jsonl", "{\"text\": \"t\"}");
    DataException e =
        assertThrows(
            DataException.class,
            () -> readAll(open(f, cfg().format(DataFormat.PROMPT_COMPLETION).build())));
    assertTrue(e.getMessage().contains("over.jsonl:1"), e.getMessage());
    assertTrue(e.getMessage().contains("'prompt'"), e.getMessage());
  }

  @Test
  void formatIsFixedByTheFirstLine() {
    // line 2 has the keys of another format: it is read as the detected one and lacks 'text'
    Path f =
        write(
            dir, "mixed.jsonl", "{\"text\": \"t\"}", "{\"prompt\": \"p\", \"completion\": \"c\"}");
    DataException e = assertThrows(DataException.class, () -> readAll(open(f, cfg().build())));
    assertTrue(e.getMessage().contains("mixed.jsonl:2"), e.getMessage());
    assertTrue(e.getMessage().contains("missing field 'text'"), e.getMessage());
  }
}
