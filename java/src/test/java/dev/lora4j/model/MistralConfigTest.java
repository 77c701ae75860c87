package dev.lora4j.model;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.lora4j.Fixtures;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

class MistralConfigTest {
  private static final ObjectMapper JSON = new ObjectMapper();
  private static final String TINY = "hf-reference/tiny/model/config.json";

  @TempDir Path tmp;

  @Test
  void fixtureConfigsInTransformers5Style() {
    MistralConfig tiny = MistralConfig.load(Fixtures.hf("tiny", "model"));
    assertEquals(
        new MistralConfig(
            512, 64, 176, 2, 4, 2, 16, 256, 1e-5, 10000.0, null, false, 1, 2, "mistral"),
        tiny);
    assertEquals(64, tiny.qDim());
    assertEquals(32, tiny.kvDim());
    MistralConfig sliding = MistralConfig.load(Fixtures.hf("tiny-sliding", "model/config.json"));
    assertEquals(8, sliding.slidingWindow());
    MistralConfig hd = MistralConfig.load(Fixtures.hf("hd128", "model"));
    assertEquals(1024, hd.vocabSize());
    assertEquals(256, hd.hiddenSize());
    assertEquals(512, hd.intermediateSize());
    assertEquals(2, hd.numAttentionHeads());
    assertEquals(1, hd.numKeyValueHeads());
    assertEquals(128, hd.headDim());
    assertEquals(1e6, hd.ropeTheta());
    assertNull(hd.slidingWindow());
  }

  @Test
  void realMistralConfigsWithTopLevelRopeTheta() {
    MistralConfig v1 =
        MistralConfig.load(Fixtures.resource("mistral-configs/mistral-7b-v0.1.config.json"));
    assertEquals(
        new MistralConfig(
            32000, 4096, 14336, 32, 32, 8, 128, 32768, 1e-5, 10000.0, 4096, false, 1, 2, "mistral"),
        v1);
    MistralConfig v3 =
        MistralConfig.load(Fixtures.resource("mistral-configs/mistral-7b-v0.3.config.json"));
    assertEquals(32768, v3.vocabSize());
    assertEquals(1e6, v3.ropeTheta());
    assertNull(v3.slidingWindow());
    assertEquals(128, v3.headDim(), "head_dim absent: hidden / heads");
    assertEquals(1024, v3.kvDim());
  }

  private static ObjectNode tiny() throws Exception {
    return (ObjectNode) JSON.readTree(Files.readString(Fixtures.resource(TINY)));
  }

  private static ConfigException fails(ObjectNode n, String src) {
    return assertThrows(ConfigException.class, () -> MistralConfig.parse(n.toString(), src));
  }

  @ParameterizedTest
  @ValueSource(
      strings = {
        "vocab_size",
        "hidden_size",
        "intermediate_size",
        "num_hidden_layers",
        "num_attention_heads",
        "model_type"
      })
  void missingRequiredKey(String key) throws Exception {
    ObjectNode n = tiny();
    n.remove(key);
    ConfigException e = fails(n, "/models/x/config.json");
    assertTrue(e.getMessage().contains("/models/x/config.json"), e.getMessage());
    assertTrue(e.getMessage().contains("'" + key + "'"), e.getMessage());
    assertTrue(e.getMessage().contains("missing"), e.getMessage());
    // an explicit null is as missing as an absent key
    n.putNull(key);
    assertTrue(fails(n, "c.json").getMessage().contains("'" + key + "'"));
  }

  @Test
  void wrongTypesAndValues() throws Exception {
    ObjectNode n = tiny();
    n.put("hidden_size", "64");
    assertMessage(fails(n, "c.json"), "c.json", "'hidden_size'", "integer");
    n = tiny();
    n.put("num_hidden_layers", 2.5);
    assertMessage(fails(n, "c.json"), "'num_hidden_layers'", "integer");
    n = tiny();
    n.put("vocab_size", 0);
    assertMessage(fails(n, "c.json"), "'vocab_size'", "positive");
    n = tiny();
    n.put("intermediate_size", -1);
    assertMessage(fails(n, "c.json"), "'intermediate_size'", "positive");
    n = tiny();
    n.put("num_key_value_heads", 3);
    assertMessage(fails(n, "c.json"), "'num_key_value_heads'", "does not divide");
    n = tiny();
    n.remove("head_dim");
    n.put("num_attention_heads", 5);
    n.put("num_key_value_heads", 5);
    assertMessage(fails(n, "c.json"), "'head_dim'", "not divisible");
    n = tiny();
    n.put("model_type", "llama");
    assertMessage(fails(n, "c.json"), "'model_type'", "llama", "only \"mistral\"");
    n = tiny();
    n.put("tie_word_embeddings", true);
    assertMessage(fails(n, "c.json"), "'tie_word_embeddings'", "separate LM head");
    n = tiny();
    n.put("hidden_act", "gelu");
    assertMessage(fails(n, "c.json"), "'hidden_act'");
    n = tiny();
    n.putObject("rope_scaling").put("type", "linear");
    assertMessage(fails(n, "c.json"), "'rope_scaling'");
    n = tiny();
    ((ObjectNode) n.get("rope_parameters")).put("rope_type", "yarn");
    assertMessage(fails(n, "c.json"), "'rope_parameters.rope_type'", "yarn");
    n = tiny();
    n.put("rope_theta", 5.0);
    assertMessage(fails(n, "c.json"), "'rope_theta'", "disagrees");
    n = tiny();
    n.put("sliding_window", 0);
    assertMessage(fails(n, "c.json"), "'sliding_window'", "positive");
    assertMessage(
        assertThrows(ConfigException.class, () -> MistralConfig.parse("[1]", "c.json")),
        "c.json",
        "not a JSON object");
    assertMessage(
        assertThrows(ConfigException.class, () -> MistralConfig.load(tmp.resolve("none.json"))),
        "none.json",
        "cannot read");
  }

  private static void assertMessage(Exception e, String... parts) {
    for (String p : parts) {
      assertTrue(e.getMessage().contains(p), "message '" + e.getMessage() + "' lacks '" + p + "'");
    }
  }

  @Test
  void defaultsFollowTransformers() throws Exception {
    ObjectNode n = tiny();
    for (String k :
        new String[] {
          "head_dim",
          "num_key_value_heads",
          "sliding_window",
          "rope_parameters",
          "rms_norm_eps",
          "max_position_embeddings",
          "bos_token_id",
          "eos_token_id",
          "tie_word_embeddings"
        }) {
      n.remove(k);
    }
    n.put("num_attention_heads", 8);
    MistralConfig c = MistralConfig.parse(n.toString(), "c.json");
    assertEquals(8, c.headDim(), "hidden / heads");
    assertEquals(8, c.numKeyValueHeads(), "transformers' default when absent");
    assertEquals(4096, c.slidingWindow(), "transformers' default when absent");
    assertEquals(10000.0, c.ropeTheta());
    assertEquals(1e-6, c.rmsNormEps());
    assertEquals(131072, c.maxPositionEmbeddings());
    assertEquals(1, c.bosTokenId());
    assertEquals(2, c.eosTokenId());
    n.putNull("num_key_value_heads");
    n.putNull("head_dim");
    n.putNull("sliding_window");
    n.putArray("eos_token_id").add(7).add(2);
    c = MistralConfig.parse(n.toString(), "c.json");
    assertEquals(8, c.numKeyValueHeads(), "null: num_attention_heads");
    assertNull(c.slidingWindow());
    assertEquals(7, c.eosTokenId(), "a list: its first entry");
  }

  @ParameterizedTest
  @ValueSource(
      strings = {
        "hf-reference/tiny/model/config.json",
        "hf-reference/tiny-sliding/model/config.json",
        "hf-reference/hd128/model/config.json",
        "mistral-configs/mistral-7b-v0.1.config.json",
        "mistral-configs/mistral-7b-v0.3.config.json"
      })
  void toJsonRoundTrips(String resource) throws Exception {
    MistralConfig c = MistralConfig.load(Fixtures.resource(resource));
    String json = c.toJson();
    assertEquals(c, MistralConfig.parse(json, "written"));
    ObjectNode n = (ObjectNode) JSON.readTree(json);
    assertEquals(c.ropeTheta(), n.get("rope_theta").doubleValue());
    assertEquals(c.ropeTheta(), n.get("rope_parameters").get("rope_theta").doubleValue());
    assertEquals("MistralForCausalLM", n.get("architectures").get(0).textValue());
    assertTrue(n.has("sliding_window"), "sliding_window written even when null");
    assertTrue(
        json.startsWith("{\n  \"architectures\": [\n    \"MistralForCausalLM\"\n  ],"), json);
  }
}
