package dev.lora4j.model.peft;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.lora4j.Fixtures;
import dev.lora4j.model.ConfigException;
import dev.lora4j.model.MistralConfig;
import dev.lora4j.safetensors.DType;
import dev.lora4j.safetensors.SafetensorsFile;
import dev.lora4j.safetensors.SafetensorsWriter;
import dev.lora4j.safetensors.TensorInfo;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.EnumSet;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

class LoraAdapterTest {
  private static final ObjectMapper JSON = new ObjectMapper();

  @TempDir Path tmp;
  private int copies;

  private static void assertMessage(Exception e, String... parts) {
    for (String p : parts) {
      assertTrue(e.getMessage().contains(p), "message '" + e.getMessage() + "' lacks '" + p + "'");
    }
  }

  @ParameterizedTest
  @ValueSource(strings = {"tiny", "tiny-sliding", "hd128"})
  void readsValidatesAndRewritesFixtureAdapters(String testCase) throws Exception {
    MistralConfig model = MistralConfig.load(Fixtures.hf(testCase, "model"));
    Path dir = Fixtures.hf(testCase, "adapter_init");
    LoraAdapter a = LoraAdapter.read(dir);
    a.validate(model);
    AdapterConfig c = a.config();
    int r =
        switch (testCase) {
          case "tiny" -> 8;
          case "tiny-sliding" -> 4;
          default -> 16;
        };
    assertEquals(r, c.r());
    assertEquals(2.0 * r, c.loraAlpha());
    assertEquals(2.0, c.scale());
    assertEquals(EnumSet.allOf(LoraTarget.class), c.targets());
    assertEquals(DType.F64, a.dtype(), "the fixtures are float64");
    assertEquals(model.numHiddenLayers() * 7 * 2, a.keys().size());
    Path file = dir.resolve(LoraAdapter.WEIGHTS_FILE);
    try (SafetensorsFile f = SafetensorsFile.open(file)) {
      assertEquals(new HashSet<>(f.names()), a.keys());
      for (TensorInfo t : f.tensors()) {
        LoraAdapter.Weight w = a.weight(t.name());
        assertArrayEquals(t.shape(), w.shape());
        double[] exact = f.readDouble(t.name());
        for (int i = 0; i < exact.length; i++) {
          // the init adapter was rounded to bf16, so float holds it exactly
          assertEquals(exact[i], w.values()[i], 0.0, t.name());
        }
      }
    }
    LoraAdapter.Weight qa = a.a(1, LoraTarget.Q_PROJ);
    assertEquals(r, qa.rows());
    assertEquals(model.hiddenSize(), qa.cols());
    assertEquals(model.hiddenSize(), a.b(0, LoraTarget.DOWN_PROJ).rows());
    assertEquals(model.kvDim(), a.b(0, LoraTarget.V_PROJ).rows());

    // written back: the same files PEFT wrote, byte for byte
    Path out = tmp.resolve("out");
    a.write(out);
    assertArrayEquals(
        Files.readAllBytes(file),
        Files.readAllBytes(out.resolve(LoraAdapter.WEIGHTS_FILE)),
        "adapter_model.safetensors identical to PEFT's");
    assertEquals(
        Files.readString(dir.resolve(AdapterConfig.FILE_NAME)),
        Files.readString(out.resolve(AdapterConfig.FILE_NAME)),
        "adapter_config.json identical");
    try (SafetensorsFile f = SafetensorsFile.open(out.resolve(LoraAdapter.WEIGHTS_FILE))) {
      assertEquals(Map.of("format", "pt"), f.metadata());
    }
  }

  @ParameterizedTest
  @ValueSource(strings = {"tiny", "tiny-sliding", "hd128"})
  void trainedAdapterRoundTripsToFloatPrecision(String testCase) throws Exception {
    MistralConfig model = MistralConfig.load(Fixtures.hf(testCase, "model"));
    Path dir = Fixtures.hf(testCase, "adapter_trained");
    LoraAdapter a = LoraAdapter.read(dir);
    a.validate(model);
    Path out = tmp.resolve("trained");
    a.write(out);
    try (SafetensorsFile orig = SafetensorsFile.open(dir.resolve(LoraAdapter.WEIGHTS_FILE));
        SafetensorsFile mine = SafetensorsFile.open(out.resolve(LoraAdapter.WEIGHTS_FILE))) {
      assertEquals(orig.tensors(), mine.tensors(), "same keys, dtypes, shapes and offsets");
      assertEquals(orig.dataStart(), mine.dataStart(), "same header");
      for (String name : orig.names()) {
        double[] x = orig.readDouble(name);
        double[] y = mine.readDouble(name);
        for (int i = 0; i < x.length; i++) assertEquals((double) (float) x[i], y[i], 0.0, name);
      }
    }
    JsonNode before = JSON.readTree(dir.resolve(AdapterConfig.FILE_NAME).toFile());
    JsonNode after = JSON.readTree(out.resolve(AdapterConfig.FILE_NAME).toFile());
    assertEquals(before, after);
  }

  @Test
  void initNewMatchesPeftLayoutAndKaimingBound() throws Exception {
    MistralConfig model = MistralConfig.load(Fixtures.hf("tiny", "model"));
    LoraAdapter a = LoraAdapter.initNew(model, 8, 16, EnumSet.allOf(LoraTarget.class), false, 42);
    a.validate(model);
    LoraAdapter peft = LoraAdapter.read(Fixtures.hf("tiny", "adapter_init"));
    assertEquals(peft.keys(), a.keys());
    for (String k : peft.keys()) {
      assertArrayEquals(peft.weight(k).shape(), a.weight(k).shape(), k);
    }
    assertEquals(DType.F32, a.dtype());
    assertEquals(2.0, a.config().scale());
    for (Map.Entry<String, LoraAdapter.Weight> e : a.weights().entrySet()) {
      float[] v = e.getValue().values();
      if (e.getKey().contains("lora_B")) {
        for (float x : v) assertEquals(0f, x, e.getKey());
        continue;
      }
      int in = e.getValue().cols();
      double bound = 1 / Math.sqrt(in);
      assertEquals(bound, LoraAdapter.kaimingUniformBound(in), 1e-15);
      double sum = 0;
      double sumSq = 0;
      double max = 0;
      for (float x : v) {
        assertTrue(Math.abs(x) <= (float) bound, e.getKey() + ": " + x + " outside " + bound);
        sum += x;
        sumSq += (double) x * x;
        max = Math.max(max, Math.abs(x));
      }
      int n = v.length;
      // U(-b, b): mean 0 (sd b / sqrt(3n)), variance b^2 / 3, max near b
      assertEquals(0, sum / n, 5 * bound / Math.sqrt(3.0 * n), e.getKey());
      assertEquals(bound * bound / 3, sumSq / n, 0.25 * bound * bound / 3, e.getKey());
      assertTrue(max > 0.9 * bound, e.getKey());
    }
    // deterministic per seed, different across seeds
    LoraAdapter same =
        LoraAdapter.initNew(model, 8, 16, EnumSet.allOf(LoraTarget.class), false, 42);
    LoraAdapter other =
        LoraAdapter.initNew(model, 8, 16, EnumSet.allOf(LoraTarget.class), false, 43);
    String k = LoraAdapter.key(0, LoraTarget.Q_PROJ, false);
    assertArrayEquals(a.weight(k).values(), same.weight(k).values());
    assertNotEquals(a.weight(k).values()[0], other.weight(k).values()[0]);

    // written and read back: float32 bit for bit, config with PEFT's key set
    Path out = tmp.resolve("new");
    a.write(out);
    LoraAdapter back = LoraAdapter.read(out);
    assertEquals(DType.F32, back.dtype());
    for (String key : a.keys()) {
      assertArrayEquals(a.weight(key).values(), back.weight(key).values(), key);
    }
    assertEquals(a.config(), back.config());
    Set<String> peftKeys = new HashSet<>();
    JSON.readTree(Fixtures.hf("tiny", "adapter_init/adapter_config.json").toFile())
        .fieldNames()
        .forEachRemaining(peftKeys::add);
    Set<String> ourKeys = new HashSet<>();
    JSON.readTree(out.resolve(AdapterConfig.FILE_NAME).toFile())
        .fieldNames()
        .forEachRemaining(ourKeys::add);
    assertEquals(peftKeys, ourKeys);
  }

  @Test
  void rsloraScaleAndTargetSubsetAndMask() {
    MistralConfig model = MistralConfig.load(Fixtures.hf("hd128", "model"));
    LoraAdapter a =
        LoraAdapter.initNew(
            model, 16, 32, EnumSet.of(LoraTarget.V_PROJ, LoraTarget.Q_PROJ), true, 1);
    assertEquals(8.0, a.config().scale(), 1e-12);
    assertEquals(List.of("q_proj", "v_proj"), a.config().targetModules());
    assertEquals(2 * 2 * 2, a.keys().size());
    assertEquals(5, LoraTarget.mask(a.config().targets()));
    assertEquals(127, LoraTarget.mask(EnumSet.allOf(LoraTarget.class)));
    assertEquals(256, LoraTarget.O_PROJ.inFeatures(model));
    assertEquals(128, LoraTarget.K_PROJ.outFeatures(model));
    assertEquals(512, LoraTarget.DOWN_PROJ.inFeatures(model));
    assertEquals("mlp.gate_proj", LoraTarget.GATE_PROJ.modulePath());
  }

  private Path copyAdapter(String testCase) throws Exception {
    Path src = Fixtures.hf(testCase, "adapter_init");
    Path dst = tmp.resolve(testCase + "-copy" + (copies++));
    Files.createDirectories(dst);
    for (String f : List.of(AdapterConfig.FILE_NAME, LoraAdapter.WEIGHTS_FILE)) {
      Files.copy(src.resolve(f), dst.resolve(f));
    }
    return dst;
  }

  /** Rewrites the adapter's weights file with a change to its tensor map. */
  private static void rewriteWeights(
      Path dir,
      java.util.function.Consumer<Map<String, TensorInfo>> edit,
      String addName,
      long[] addShape)
      throws Exception {
    Path file = dir.resolve(LoraAdapter.WEIGHTS_FILE);
    byte[] bytes = Files.readAllBytes(file);
    try (SafetensorsFile f = SafetensorsFile.open(file)) {
      Map<String, TensorInfo> keep = new TreeMap<>();
      for (TensorInfo t : f.tensors()) keep.put(t.name(), t);
      edit.accept(keep);
      SafetensorsWriter w = new SafetensorsWriter();
      for (TensorInfo t : keep.values()) {
        w.add(
            t.name(),
            t.dtype(),
            t.shape(),
            java.nio.ByteBuffer.wrap(bytes, (int) (f.dataStart() + t.begin()), (int) t.byteLength())
                .slice());
      }
      if (addName != null) {
        long n = addShape[0] * addShape[1];
        w.addFloats(addName, DType.F64, addShape, new float[(int) n]);
      }
      Files.delete(file);
      w.write(file);
    }
  }

  @Test
  void adapterShapesNotMatchingTheModel() throws Exception {
    LoraAdapter tiny = LoraAdapter.read(Fixtures.hf("tiny", "adapter_init"));
    MistralConfig hd128 = MistralConfig.load(Fixtures.hf("hd128", "model"));
    AdapterException e = assertThrows(AdapterException.class, () -> tiny.validate(hd128));
    assertMessage(
        e,
        Fixtures.hf("tiny", "adapter_init").resolve(LoraAdapter.WEIGHTS_FILE).toString(),
        "base_model.model.model.layers.0.",
        "has shape [",
        "model needs [");
    // a B matrix with the wrong output size
    Path dir = copyAdapter("tiny");
    String key = "base_model.model.model.layers.1.self_attn.k_proj.lora_B.weight";
    rewriteWeights(dir, m -> m.remove(key), key, new long[] {64, 8});
    AdapterException e2 =
        assertThrows(
            AdapterException.class,
            () -> LoraAdapter.read(dir).validate(MistralConfig.load(Fixtures.hf("tiny", "model"))));
    assertMessage(e2, dir.resolve(LoraAdapter.WEIGHTS_FILE).toString(), key, "[64, 8]", "[32, 8]");
    // a rank that disagrees with r in the config fails on read
    Path dir3 = copyAdapter("tiny");
    String a = "base_model.model.model.layers.0.mlp.up_proj.lora_A.weight";
    rewriteWeights(dir3, m -> m.remove(a), a, new long[] {4, 64});
    assertMessage(assertThrows(AdapterException.class, () -> LoraAdapter.read(dir3)), a, "r = 8");
  }

  @Test
  void adapterMissingOrUnexpectedKey() throws Exception {
    MistralConfig model = MistralConfig.load(Fixtures.hf("tiny", "model"));
    Path dir = copyAdapter("tiny");
    String key = "base_model.model.model.layers.1.mlp.down_proj.lora_A.weight";
    rewriteWeights(dir, m -> m.remove(key), null, null);
    LoraAdapter a = LoraAdapter.read(dir);
    assertMessage(
        assertThrows(AdapterException.class, () -> a.validate(model)),
        dir.resolve(LoraAdapter.WEIGHTS_FILE).toString(),
        key,
        "missing");
    Path dir2 = copyAdapter("tiny");
    String extra = "base_model.model.model.layers.2.self_attn.q_proj.lora_A.weight";
    rewriteWeights(dir2, m -> {}, extra, new long[] {8, 64});
    LoraAdapter b = LoraAdapter.read(dir2);
    assertMessage(
        assertThrows(AdapterException.class, () -> b.validate(model)),
        extra,
        "unexpected",
        "2 layers");
    Path dir3 = copyAdapter("tiny");
    String odd = "base_model.model.model.layers.0.self_attn.q_proj.lora_embedding_A";
    rewriteWeights(dir3, m -> {}, odd, new long[] {8, 64});
    assertMessage(
        assertThrows(AdapterException.class, () -> LoraAdapter.read(dir3)),
        odd,
        "unexpected tensor");
    Path dir4 = copyAdapter("tiny");
    Files.delete(dir4.resolve(LoraAdapter.WEIGHTS_FILE));
    assertMessage(
        assertThrows(AdapterException.class, () -> LoraAdapter.read(dir4)),
        LoraAdapter.WEIGHTS_FILE,
        "missing");
  }

  @Test
  void unsupportedAdapterConfigs() throws Exception {
    String src = Files.readString(Fixtures.hf("tiny", "adapter_init/adapter_config.json"));
    Map<String, Object> bad = new java.util.LinkedHashMap<>();
    bad.put("use_dora", true);
    bad.put("rank_pattern", Map.of("q_proj", 4));
    bad.put("alpha_pattern", Map.of("q_proj", 4));
    bad.put("modules_to_save", List.of("lm_head"));
    bad.put("bias", "everything");
    bad.put("layers_to_transform", List.of(0));
    bad.put("fan_in_fan_out", "yes");
    bad.put("peft_type", "IA3");
    bad.put("target_modules", ".*proj");
    bad.put("r", 0);
    // variants whose forward or base weights differ from plain LoRA's
    bad.put("alora_invocation_tokens", List.of(733, 16289, 28793));
    bad.put("arrow_config", Map.of("top_k", 3));
    bad.put("loftq_config", Map.of("loftq_bits", 4));
    bad.put("use_qalora", true);
    bad.put("use_bdlora", true);
    bad.put("init_lora_weights", "pissa");
    for (Map.Entry<String, Object> e : bad.entrySet()) {
      ObjectNode n = (ObjectNode) JSON.readTree(src);
      n.set(e.getKey(), JSON.valueToTree(e.getValue()));
      ConfigException ex =
          assertThrows(
              ConfigException.class,
              () -> AdapterConfig.parse(n.toString(), "/a/adapter_config.json"),
              e.getKey());
      assertMessage(ex, "/a/adapter_config.json", "'" + e.getKey() + "'");
    }
    ObjectNode n = (ObjectNode) JSON.readTree(src);
    n.put("target_modules", "all-linear");
    n.put("some_future_field", 3);
    n.put("use_rslora", true);
    n.putObject("loftq_config"); // PEFT's default, {}: none
    n.put("bias", "all"); // no biases in Mistral's projections: plain LoRA
    n.put("fan_in_fan_out", true); // PEFT resets it for nn.Linear
    n.put("init_lora_weights", "gaussian"); // only the starting values
    AdapterConfig c = AdapterConfig.parse(n.toString(), "a.json");
    assertEquals(EnumSet.allOf(LoraTarget.class), c.targets());
    // an alpha past the double range reads as infinity: refused, not a scale of infinity
    String huge = src.replaceFirst("\"lora_alpha\": *[0-9.]+", "\"lora_alpha\": 1e400");
    assertNotEquals(src, huge);
    assertMessage(
        assertThrows(ConfigException.class, () -> AdapterConfig.parse(huge, "a.json")),
        "a.json",
        "'lora_alpha'");
    for (String init : List.of("olora", "corda", "loftq", "pissa_niter_16")) {
      ObjectNode i = (ObjectNode) JSON.readTree(src);
      i.put("init_lora_weights", init);
      assertMessage(
          assertThrows(ConfigException.class, () -> AdapterConfig.parse(i.toString(), "a.json")),
          "init_lora_weights",
          init);
    }
    assertEquals(16 / Math.sqrt(8), c.scale(), 1e-12);
    ObjectNode m = (ObjectNode) JSON.readTree(src);
    m.remove("r");
    assertMessage(
        assertThrows(ConfigException.class, () -> AdapterConfig.parse(m.toString(), "a.json")),
        "a.json",
        "'r'",
        "missing");
    ObjectNode t = (ObjectNode) JSON.readTree(src);
    t.putArray("target_modules").add("q_proj").add("lm_head");
    assertMessage(
        assertThrows(ConfigException.class, () -> AdapterConfig.parse(t.toString(), "a.json")),
        "'target_modules'",
        "lm_head");
    assertMessage(
        assertThrows(
            ConfigException.class,
            () ->
                new AdapterConfig(
                    8,
                    16,
                    new ArrayList<>(),
                    0,
                    false,
                    "none",
                    "LORA",
                    "CAUSAL_LM",
                    false,
                    true,
                    true,
                    null,
                    null,
                    null)),
        "target_modules is empty");
  }
}
