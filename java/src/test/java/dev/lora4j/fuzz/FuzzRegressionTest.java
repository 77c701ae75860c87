package dev.lora4j.fuzz;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTimeoutPreemptively;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.lora4j.Fixtures;
import dev.lora4j.Lora4jException;
import dev.lora4j.model.ConfigException;
import dev.lora4j.model.MistralConfig;
import dev.lora4j.safetensors.Checkpoint;
import dev.lora4j.safetensors.SafetensorsException;
import dev.lora4j.tokenizer.ChatMessage;
import dev.lora4j.tokenizer.ChatTemplate;
import dev.lora4j.tokenizer.ChatTemplateException;
import dev.lora4j.tokenizer.Tokenizer;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Inputs the fuzzer found that once crashed, hung or exhausted memory; each must now be refused.
 */
class FuzzRegressionTest {
  @TempDir Path tmp;

  private Lora4jException tokenizer(String json) throws IOException {
    Path p = tmp.resolve("tokenizer.json");
    Files.writeString(p, json);
    return assertThrows(Lora4jException.class, () -> Tokenizer.fromFile(p));
  }

  @Test
  void tokenizerIdsOutsideTheTableAreRefused() throws IOException {
    // was ArrayIndexOutOfBoundsException, NegativeArraySizeException and OutOfMemoryError
    assertTrue(
        tokenizer("{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0,\"b\":-1},\"merges\":[]}}")
            .getMessage()
            .contains("model.vocab entry 'b' has id -1"));
    assertTrue(
        tokenizer(
                "{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0,\"b\":2147483647},\"merges\":[]}}")
            .getMessage()
            .contains("has id 2147483647"));
    assertTrue(
        tokenizer(
                "{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0},\"merges\":[]},"
                    + "\"added_tokens\":[{\"id\":100000000,\"content\":\"<x>\"}]}")
            .getMessage()
            .contains("added_tokens entry '<x>' has id 100000000"));
    assertTrue(
        tokenizer("{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":\"zero\"},\"merges\":[]}}")
            .getMessage()
            .contains("'a' has id \"zero\""));
  }

  @Test
  void tokenizerMalformedComponentsAreRefused() throws IOException {
    String vocab = "\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0,\"b\":1,\"ab\":2},";
    // was NullPointerException
    assertTrue(
        tokenizer("{" + vocab + "\"merges\":[[\"a\"]]}}")
            .getMessage()
            .contains("malformed merge [\"a\"]"));
    // were StringIndexOutOfBoundsException, the second at decode time
    assertTrue(
        tokenizer(
                "{"
                    + vocab
                    + "\"merges\":[]},\"pre_tokenizer\":{\"type\":\"Metaspace\","
                    + "\"replacement\":\"\"}}")
            .getMessage()
            .contains("empty replacement"));
    assertTrue(
        tokenizer(
                "{"
                    + vocab
                    + "\"merges\":[]},\"decoder\":{\"type\":\"Strip\","
                    + "\"content\":\"\",\"start\":1}}")
            .getMessage()
            .contains("Strip decoder has an empty content"));
  }

  private static ChatTemplateException template(String src) {
    return assertTimeoutPreemptively(
        Duration.ofSeconds(10),
        () ->
            assertThrows(
                ChatTemplateException.class,
                () ->
                    ChatTemplate.of(src, "<s>", "</s>")
                        .renderString(List.of(ChatMessage.user("hi")), false)));
  }

  @Test
  void templateLiteralsOutOfRangeAreRefused() {
    // were NumberFormatException / StringIndexOutOfBoundsException
    assertTrue(
        template("{{ 9223372036854775808 }}")
            .getMessage()
            .contains("bad number literal '9223372036854775808'"));
    assertTrue(template("{{ 1e }}").getMessage().contains("bad number literal"));
    assertTrue(template("{{ '\\u12' }}").getMessage().contains("4 hex digits"));
  }

  @Test
  void templateMisplacedConstructsAreRefused() {
    // were Jinja$BreakSignal escaping render, StringIndexOutOfBounds, IndexOutOfBounds
    assertTrue(template("{% break %}").getMessage().contains("outside a for loop"));
    assertTrue(template("{% raw %}x{% endraw").getMessage().contains("unclosed raw block"));
    assertTrue(template("{{ strftime_now() }}").getMessage().contains("strftime_now()"));
    assertTrue(template("{{ '{} {}'.format(1) }}").getMessage().contains("has no argument"));
    assertTrue(
        template("{{ 'a'|replace('a') }}")
            .getMessage()
            .contains("filter 'replace' needs argument 2"));
    assertTrue(
        template("{{ 4 is divisibleby }}")
            .getMessage()
            .contains("test 'divisibleby' needs argument 1"));
  }

  @Test
  void templateRunawaySizesAreRefused() {
    // were a hang (range materialized 10^11 longs, repetition copied quadratically) or OOM
    assertTrue(
        template("{% for x in range(99999999999) %}{% endfor %}")
            .getMessage()
            .contains("the limit is"));
    assertTrue(template("{{ 'ab' * 999999999 }}").getMessage().contains("the limit is"));
    assertEquals(
        "abababab", ChatTemplate.of("{{ 'ab' * 4 }}", null, null).renderString(List.of(), false));
    assertEquals(
        "",
        ChatTemplate.of("{{ 'ab' * 0 }}{{ 'ab' * -3 }}", null, null)
            .renderString(List.of(), false));
  }

  @Test
  void templateDeepNestingIsRefusedNotAStackOverflow() {
    assertTrue(
        template("{{ " + "(".repeat(5000) + "1" + ")".repeat(5000) + " }}")
            .getMessage()
            .contains("nested"));
    assertTrue(
        template("{{ " + "[".repeat(5000) + "]".repeat(5000) + " }}")
            .getMessage()
            .contains("nested"));
    assertTrue(template("{{ " + "not ".repeat(5000) + "1 }}").getMessage().contains("nested"));
    assertTrue(template("{{ " + "-".repeat(5000) + "1 }}").getMessage().contains("nested"));
    assertTrue(
        template("{% if 1 %}".repeat(3000) + "{% endif %}".repeat(3000))
            .getMessage()
            .contains("nested"));
    assertTrue(
        template("{% macro f(n) %}{{ f(n) }}{% endmacro %}{{ f(1) }}")
            .getMessage()
            .contains("macro 'f'"));
    // nesting within the limits still renders
    assertEquals(
        "1",
        ChatTemplate.of("{{ " + "(".repeat(50) + "1" + ")".repeat(50) + " }}", null, null)
            .renderString(List.of(), false));
  }

  @Test
  void shardNameThatIsNoPathIsRefused() throws IOException {
    // was java.nio.file.InvalidPathException from Path.resolve
    Path dir = tmp.resolve("model");
    Files.createDirectories(dir);
    Files.writeString(
        dir.resolve(Checkpoint.INDEX_FILE),
        "{\"weight_map\":{\"lm_head.weight\":\"a\\u0000b.safetensors\"}}");
    SafetensorsException e = assertThrows(SafetensorsException.class, () -> Checkpoint.open(dir));
    assertTrue(e.getMessage().contains("tensor 'lm_head.weight'"), e.getMessage());
  }

  @Test
  void queryWidthOverflowIsRefused() throws IOException {
    // was accepted, with qDim() negative
    String json =
        Files.readString(Fixtures.hf("tiny", "model/config.json"))
            .replaceFirst("\"num_attention_heads\": *[0-9]+", "\"num_attention_heads\": 65536")
            .replaceFirst("\"num_key_value_heads\": *[0-9]+", "\"num_key_value_heads\": 65536")
            .replaceFirst("\"head_dim\": *[0-9]+", "\"head_dim\": 65536");
    ConfigException e =
        assertThrows(ConfigException.class, () -> MistralConfig.parse(json, "config.json"));
    assertTrue(e.getMessage().contains("head_dim"), e.getMessage());
  }
}
