package dev.lora4j.model;

import static org.junit.jupiter.api.Assertions.*;

import dev.lora4j.Lora4jException;
import dev.lora4j.model.peft.LoraTarget;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;

/**
 * The model's frozen weights come from the native core (lora4j_weight_info): here they are held to
 * Hugging Face's Mistral layout written out independently, on random shapes (GQA, head_dim apart
 * from hidden / heads, one or several layers).
 */
class ModelLayoutTest {
  static MistralConfig config(
      int vocab, int hidden, int inter, int layers, int heads, int kv, int headDim) {
    return MistralConfig.parse(
        "{\"model_type\":\"mistral\",\"vocab_size\":"
            + vocab
            + ",\"hidden_size\":"
            + hidden
            + ",\"intermediate_size\":"
            + inter
            + ",\"num_hidden_layers\":"
            + layers
            + ",\"num_attention_heads\":"
            + heads
            + ",\"num_key_value_heads\":"
            + kv
            + ",\"head_dim\":"
            + headDim
            + ",\"max_position_embeddings\":64,\"tie_word_embeddings\":false}",
        "test config");
  }

  /** Hugging Face's MistralForCausalLM state dict, in the engine's order. */
  static List<String> expected(MistralConfig c) {
    List<String> w = new ArrayList<>();
    long h = c.hiddenSize(),
        q = (long) c.numAttentionHeads() * c.headDim(),
        kv = (long) c.numKeyValueHeads() * c.headDim(),
        in = c.intermediateSize();
    w.add("model.embed_tokens.weight [" + c.vocabSize() + ", " + h + "] -1 null");
    for (int l = 0; l < c.numHiddenLayers(); l++) {
      String p = "model.layers." + l + ".";
      w.add(p + "input_layernorm.weight [" + h + "] " + l + " null");
      w.add(p + "self_attn.q_proj.weight [" + q + ", " + h + "] " + l + " Q_PROJ");
      w.add(p + "self_attn.k_proj.weight [" + kv + ", " + h + "] " + l + " K_PROJ");
      w.add(p + "self_attn.v_proj.weight [" + kv + ", " + h + "] " + l + " V_PROJ");
      w.add(p + "self_attn.o_proj.weight [" + h + ", " + q + "] " + l + " O_PROJ");
      w.add(p + "mlp.gate_proj.weight [" + in + ", " + h + "] " + l + " GATE_PROJ");
      w.add(p + "mlp.up_proj.weight [" + in + ", " + h + "] " + l + " UP_PROJ");
      w.add(p + "mlp.down_proj.weight [" + h + ", " + in + "] " + l + " DOWN_PROJ");
      w.add(p + "post_attention_layernorm.weight [" + h + "] " + l + " null");
    }
    w.add("model.norm.weight [" + h + "] -1 null");
    w.add("lm_head.weight [" + c.vocabSize() + ", " + h + "] -1 null");
    return w;
  }

  static List<String> actual(ModelLayout m) {
    List<String> w = new ArrayList<>();
    for (ModelLayout.Weight x : m.weights()) {
      w.add(
          x.name()
              + " "
              + java.util.Arrays.toString(x.shape())
              + " "
              + x.layer()
              + " "
              + x.projection());
    }
    return w;
  }

  @Test
  void theCoresLayoutIsHuggingFacesOnRandomShapes() {
    SplittableRandom r = new SplittableRandom(4);
    for (int i = 0; i < 20; i++) {
      int kv = 1 + r.nextInt(4), heads = kv * (1 + r.nextInt(4)), headDim = 2 * (1 + r.nextInt(40));
      MistralConfig c =
          config(
              3 + r.nextInt(5000),
              1 + r.nextInt(300),
              1 + r.nextInt(700),
              1 + r.nextInt(4),
              heads,
              kv,
              headDim);
      ModelLayout m = ModelLayout.of(c);
      assertEquals(expected(c), actual(m), c.toString());
      for (LoraTarget t : LoraTarget.values()) {
        long[] s = m.projection(c.numHiddenLayers() - 1, t).shape();
        assertEquals(s[0], t.outFeatures(c), t + " out");
        assertEquals(s[1], t.inFeatures(c), t + " in");
      }
      assertEquals(m.weights().size(), m.shapes().size());
      assertSame(m, ModelLayout.of(c), "an equal config reads the cached layout");
    }
  }

  @Test
  void aConfigTheCoreRefusesIsAnExceptionNamingTheKey() {
    MistralConfig odd = config(100, 30, 40, 1, 2, 1, 15);
    Lora4jException e = assertThrows(Lora4jException.class, () -> ModelLayout.of(odd));
    assertTrue(e.getMessage().contains("head_dim"), e.getMessage());
  }

  @Test
  void shapesAreCopies() {
    ModelLayout m = ModelLayout.of(config(100, 32, 40, 1, 2, 1, 16));
    m.weights().get(0).shape()[0] = 7;
    m.shapes().get("lm_head.weight")[0] = 7;
    assertEquals(100, m.weights().get(0).shape()[0]);
    ModelLayout again = ModelLayout.of(config(100, 32, 40, 1, 2, 1, 16));
    assertEquals(100, again.shapes().get("lm_head.weight")[0]);
  }
}
