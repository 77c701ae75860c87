package dev.lora4j;

import static org.junit.jupiter.api.Assertions.*;

import dev.lora4j.model.peft.LoraAdapter;
import dev.lora4j.nativ.NativeException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Bad model folders, bad adapters and misuse of a model: each a clear exception, JVM alive. */
class ModelErrorsTest {
  static final Path REF = Path.of("src/test/resources/hf-reference");

  @Test
  void wrongModelFolders(@TempDir Path tmp) throws Exception {
    var e1 =
        assertThrows(
            Lora4jException.class, () -> MistralModel.load(tmp.resolve("nope"), Device.cpu()));
    assertTrue(e1.getMessage().contains("nope"), e1.getMessage());
    var e2 = assertThrows(Lora4jException.class, () -> MistralModel.load(tmp, Device.cpu()));
    assertTrue(e2.getMessage().contains("config.json"), e2.getMessage());
    // A folder whose config does not match its weights.
    Path m = tmp.resolve("m");
    Files.createDirectories(m);
    for (Path p : Files.list(REF.resolve("tiny/model")).toList()) {
      Files.copy(p, m.resolve(p.getFileName()), StandardCopyOption.REPLACE_EXISTING);
    }
    Files.writeString(
        m.resolve("config.json"),
        Files.readString(m.resolve("config.json"))
            .replace("\"intermediate_size\": 176", "\"intermediate_size\": 180"));
    var e3 = assertThrows(Lora4jException.class, () -> MistralModel.load(m, Device.cpu()));
    assertTrue(
        e3.getMessage().contains("mlp.") && e3.getMessage().contains("shape"), e3.getMessage());
    // The JVM goes on: a good model still loads.
    try (MistralModel ok = MistralModel.load(REF.resolve("tiny/model"), Device.cpu())) {
      assertEquals(512, ok.config().vocabSize());
    }
  }

  @Test
  void weightsThatDisagreeWithTheirConfigOrAreNotFinite(@TempDir Path tmp) throws Exception {
    // a NaN in a weight: refused when loading, naming the file, the tensor and the element (it
    // reached the loss as NaN, or, in a query, was hidden as a row that sees no key)
    Path nan = tmp.resolve("nan");
    Fixtures.copyTinyMistral(nan, null, "model.layers.1.self_attn.q_proj.weight");
    for (Quantization q : List.of(Quantization.none(), Quantization.nf4())) {
      var e =
          assertThrows(
              Lora4jException.class, () -> MistralModel.load(nan, Device.cpu(), q).close());
      assertTrue(
          e.getMessage().contains(nan.resolve("model.safetensors").toString())
              && e.getMessage()
                  .contains(
                      "'model.layers.1.self_attn.q_proj.weight' holds a value that is not finite"
                          + " (NaN) at element 17 (row 0, column 17)"),
          q + ": " + e.getMessage());
    }
    // weights of a layer that config.json does not count: refused, not left out
    Path fewer = tmp.resolve("fewer");
    Fixtures.copyTinyMistral(fewer, null, null);
    Files.writeString(
        fewer.resolve("config.json"),
        Files.readString(fewer.resolve("config.json"))
            .replace("\"num_hidden_layers\": 4", "\"num_hidden_layers\": 3"));
    var e2 = assertThrows(Lora4jException.class, () -> MistralModel.load(fewer, Device.cpu()));
    assertTrue(
        e2.getMessage().contains("model.layers.3.")
            && e2.getMessage().contains("num_hidden_layers is 3"),
        e2.getMessage());
    // model.safetensors beside an index: the single file is the checkpoint, as Hugging Face's
    // from_pretrained takes it (here the index names a shard that is not there)
    Path both = tmp.resolve("both");
    Fixtures.copyTinyMistral(both, null, null);
    Files.writeString(
        both.resolve("model.safetensors.index.json"),
        "{\"metadata\": {}, \"weight_map\": {\"lm_head.weight\":"
            + " \"model-00001-of-00002.safetensors\"}}");
    try (MistralModel m = MistralModel.load(both, Device.cpu())) {
      assertEquals(4, m.config().numHiddenLayers());
    }
    // config.json a link to nothing: said so
    Path dangling = tmp.resolve("dangling");
    Fixtures.copyTinyMistral(dangling, null, null);
    Files.delete(dangling.resolve("config.json"));
    Files.createSymbolicLink(dangling.resolve("config.json"), tmp.resolve("gone.json"));
    var e3 = assertThrows(Lora4jException.class, () -> MistralModel.load(dangling, Device.cpu()));
    assertTrue(e3.getMessage().contains("symbolic link"), e3.getMessage());
  }

  @Test
  void adapterWithANonFiniteValueIsRefusedAndNothingAttached(@TempDir Path tmp) {
    try (MistralModel m = MistralModel.load(REF.resolve("tiny/model"), Device.cpu())) {
      LoraAdapter a = LoraAdapter.read(REF.resolve("tiny/adapter_trained"));
      String key = a.weights().keySet().iterator().next();
      LoraAdapter.Weight w = a.weight(key);
      w.values()[w.cols() + 2] = Float.POSITIVE_INFINITY;
      var e = assertThrows(Lora4jException.class, () -> m.attachAdapter(a));
      assertTrue(
          e.getMessage().contains(key)
              && e.getMessage().contains("not finite (Infinity) at row 1, column 2"),
          e.getMessage());
      assertNull(m.adapterConfig());
    }
  }

  @Test
  void optimizerMomentsOfAnotherShapeAreRefusedBeforeAnyIsSet() {
    try (MistralModel m = MistralModel.load(REF.resolve("tiny/model"), Device.cpu())) {
      m.attachAdapter(REF.resolve("tiny/adapter_trained"));
      m.trainStep(Batch.of(new int[] {1, 2, 3, 4, 5}), AdamWConfig.defaults());
      OptimizerState s = m.optimizerState();
      java.util.Map<String, LoraAdapter.Weight> sq = new java.util.LinkedHashMap<>(s.expAvgSq());
      String last = null;
      for (String k : sq.keySet()) last = k;
      LoraAdapter.Weight w = sq.get(last);
      sq.put(
          last, new LoraAdapter.Weight(w.cols(), w.rows(), w.values())); // transposed: same count
      var e =
          assertThrows(
              Lora4jException.class,
              () -> m.setOptimizerState(new OptimizerState(s.step(), s.expAvg(), sq)));
      assertTrue(
          e.getMessage().contains("second moment of LoRA tensor " + last)
              && e.getMessage().contains("[" + w.cols() + ", " + w.rows() + "]"),
          e.getMessage());
      // nothing was set: the first moments are still the engine's own
      OptimizerState after = m.optimizerState();
      for (String k : s.expAvg().keySet())
        assertArrayEquals(s.expAvg().get(k).values(), after.expAvg().get(k).values(), k);
    }
  }

  @Test
  void adapterShapesNotMatchingTheModel() {
    try (MistralModel m = MistralModel.load(REF.resolve("hd128/model"), Device.cpu())) {
      var e =
          assertThrows(
              Lora4jException.class, () -> m.attachAdapter(REF.resolve("tiny/adapter_init")));
      assertTrue(e.getMessage().contains("adapter"), e.getMessage());
      assertNull(m.adapterConfig());
    }
  }

  @Test
  void badBatchesAndUseAfterClose() {
    MistralModel m = MistralModel.load(REF.resolve("tiny/model"), Device.cpu());
    var e = assertThrows(NativeException.class, () -> m.evalLoss(Batch.of(new int[] {1, 2, 9999})));
    assertTrue(
        e.getMessage().contains("input_ids") && e.getMessage().contains("9999"), e.getMessage());
    assertThrows(
        IllegalStateException.class,
        () -> m.trainStep(Batch.of(new int[] {1, 2, 3}), AdamWConfig.defaults()));
    var w = assertThrows(NativeException.class, () -> m.weight("model.nope.weight"));
    assertTrue(w.getMessage().contains("model.nope.weight"), w.getMessage());
    m.close();
    m.close();
    assertThrows(IllegalStateException.class, () -> m.evalLoss(Batch.of(new int[] {1, 2, 3})));
  }

  @Test
  void nullArgumentsAndOversizedResultsAreRefusedBeforeAnyWork() {
    try (MistralModel m = MistralModel.load(REF.resolve("tiny/model"), Device.cpu())) {
      m.attachNewAdapter(LoraConfig.builder().rank(4).alpha(8).allLinear().build(), 7);
      Batch b = Batch.of(new int[] {1, 2, 3, 4});
      m.zeroGrad();
      var e1 =
          assertThrows(
              NullPointerException.class, () -> m.trainStep((Batch) null, AdamWConfig.defaults()));
      assertEquals("batch is null", e1.getMessage());
      var e2 = assertThrows(NullPointerException.class, () -> m.trainStep(b, null));
      assertEquals("adamw is null", e2.getMessage());
      var e3 =
          assertThrows(
              NullPointerException.class,
              () -> m.trainStep(java.util.Arrays.asList(b, null), AdamWConfig.defaults()));
      assertEquals("microBatches[1] is null", e3.getMessage());
      // no forward-backward ran before the refusals: the gradients are still zero
      java.nio.FloatBuffer g =
          java.nio.ByteBuffer.allocateDirect(Math.toIntExact(m.gradientCount() * 4))
              .order(java.nio.ByteOrder.nativeOrder())
              .asFloatBuffer();
      m.readGradients(g);
      for (int i = 0; i < g.capacity(); ++i) assertEquals(0f, g.get(i), "gradient " + i);
      // 4.2 M positions x 512 logits do not fit a float[]: refused by name before the forward
      Batch huge = Batch.of(new int[4_200_000]);
      var e4 = assertThrows(IllegalArgumentException.class, () -> m.logits(huge));
      assertTrue(
          e4.getMessage().contains("logits") && e4.getMessage().contains("2150400000"),
          e4.getMessage());
      // and (2 layers + 1) x 11.2 M positions x 64 hidden states
      Batch huger = Batch.of(new int[11_200_000]);
      var e5 = assertThrows(IllegalArgumentException.class, () -> m.hiddenStates(huger));
      assertTrue(
          e5.getMessage().contains("hidden states") && e5.getMessage().contains("2150400000"),
          e5.getMessage());
      // and the model still trains
      assertTrue(Double.isFinite(m.trainStep(b, AdamWConfig.defaults()).loss()));
    }
  }

  @Test
  void generationRefusesOverlongAndSanitizesControlCharacters() {
    assertEquals("a\tb\nc", Generator.sanitize("a\tb\u0000\u0007\nc\u001b", 100));
    assertThrows(IllegalArgumentException.class, () -> Generator.sanitize("x".repeat(11), 10));
  }
}
