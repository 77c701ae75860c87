package dev.lora4j.model.nf4;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.lora4j.AdamWConfig;
import dev.lora4j.Batch;
import dev.lora4j.Device;
import dev.lora4j.Fixtures;
import dev.lora4j.LoraConfig;
import dev.lora4j.MistralModel;
import dev.lora4j.Quantization;
import dev.lora4j.StepResult;
import dev.lora4j.model.MergedExport;
import dev.lora4j.model.MistralConfig;
import dev.lora4j.model.ModelLayout;
import dev.lora4j.model.RandomModel;
import dev.lora4j.model.peft.LoraAdapter;
import dev.lora4j.safetensors.Checkpoint;
import dev.lora4j.safetensors.DType;
import dev.lora4j.safetensors.SafetensorsException;
import dev.lora4j.safetensors.SafetensorsFile;
import dev.lora4j.safetensors.SafetensorsWriter;
import dev.lora4j.safetensors.TensorInfo;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.function.Consumer;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * 4-bit checkpoints in bitsandbytes' layout: written by {@link Nf4Export}, read back and validated
 * by {@link Bnb4bit}, loaded by {@link MistralModel}; QLoRA on the CPU equal to the bf16 path on
 * the dequantized weights; merged export through bf16; the memory of a 7B model.
 */
class Nf4CheckpointTest {
  @TempDir Path tmp;

  static final ObjectMapper JSON = new ObjectMapper();
  static final String Q0 = "model.layers.0.self_attn.q_proj.weight";

  /** The tiny reference model (4 shards) written in 4 bits. */
  Path bnbTiny(boolean doubleQuant) {
    Path out = tmp.resolve("bnb-" + doubleQuant);
    Nf4Export.write(
        Fixtures.hf("tiny", "model"), out, Quantization.nf4().withDoubleQuant(doubleQuant), false);
    return out;
  }

  @Test
  void writesBitsandbytesLayout() throws Exception {
    Path dir = bnbTiny(true);
    JsonNode q = JSON.readTree(dir.resolve("config.json").toFile()).get("quantization_config");
    assertEquals("bitsandbytes", q.get("quant_method").asText());
    assertTrue(q.get("load_in_4bit").asBoolean());
    assertEquals("nf4", q.get("bnb_4bit_quant_type").asText());
    assertTrue(q.get("bnb_4bit_use_double_quant").asBoolean());
    MistralConfig cfg = MistralConfig.load(dir.resolve("config.json"));
    try (Checkpoint ck = Checkpoint.open(dir)) {
      assertTrue(ck.isSharded());
      // q_proj of layer 0: 64 x 64 = 4096 elements, 64 blocks, one nested block
      assertEquals(DType.U8, ck.dtype(Q0));
      assertArrayEquals(new long[] {2048, 1}, ck.shape(Q0));
      assertEquals(DType.U8, ck.dtype(Q0 + ".absmax"));
      assertArrayEquals(new long[] {64}, ck.shape(Q0 + ".absmax"));
      assertArrayEquals(new long[] {16}, ck.shape(Q0 + ".quant_map"));
      assertEquals(DType.F32, ck.dtype(Q0 + ".quant_map"));
      assertArrayEquals(new long[] {256}, ck.shape(Q0 + ".nested_quant_map"));
      assertArrayEquals(new long[] {1}, ck.shape(Q0 + ".nested_absmax"));
      byte[] qs = new byte[ck.data(Q0 + Bnb4bit.QUANT_STATE).remaining()];
      ck.data(Q0 + Bnb4bit.QUANT_STATE).get(qs);
      JsonNode state = JSON.readTree(new String(qs, StandardCharsets.UTF_8));
      assertEquals("nf4", state.get("quant_type").asText());
      assertEquals(64, state.get("blocksize").asInt());
      assertEquals("bfloat16", state.get("dtype").asText());
      assertEquals("[64,64]", state.get("shape").toString());
      assertEquals(256, state.get("nested_blocksize").asInt());
      assertEquals("float32", state.get("nested_dtype").asText());
      assertTrue(state.get("nested_offset").isNumber());
      // 16-bit tensors stay as they were
      for (String n :
          new String[] {
            "model.embed_tokens.weight",
            "lm_head.weight",
            "model.norm.weight",
            "model.layers.1.input_layernorm.weight"
          }) {
        assertEquals(DType.BF16, ck.dtype(n), n);
      }
      // every quantized weight reads back as what the quantizer made of the original
      try (Checkpoint orig = Checkpoint.open(Fixtures.hf("tiny", "model"))) {
        for (ModelLayout.Weight w : ModelLayout.of(cfg).weights()) {
          if (w.projection() == null) continue;
          Nf4Tensor want = Nf4.quantize(orig.readFloat(w.name()), w.shape(), DType.BF16, 64, true);
          assertEquals(want, Bnb4bit.read(ck, w.name(), w.shape()), w.name());
        }
      }
    }
  }

  @Test
  void loadsBitsandbytesFolderAndQuantizesWhileLoading() {
    for (boolean dq : new boolean[] {true, false}) {
      Path dir = bnbTiny(dq);
      MistralConfig cfg = MistralConfig.load(dir.resolve("config.json"));
      Quantization q = Quantization.nf4().withDoubleQuant(dq);
      try (MistralModel pre = MistralModel.load(dir, Device.cpu());
          MistralModel onLoad = MistralModel.load(Fixtures.hf("tiny", "model"), Device.cpu(), q);
          Checkpoint ck = Checkpoint.open(dir);
          Checkpoint orig = Checkpoint.open(Fixtures.hf("tiny", "model"))) {
        for (ModelLayout.Weight w : ModelLayout.of(cfg).weights()) {
          float[] want =
              w.projection() != null
                  ? Bnb4bit.read(ck, w.name(), w.shape()).dequantize()
                  : orig.readFloat(w.name());
          assertArrayEquals(want, pre.weight(w.name()), "pre-quantized " + w.name());
          assertArrayEquals(want, onLoad.weight(w.name()), "quantized on load " + w.name());
        }
      }
    }
  }

  /** Writes a bf16 folder holding the dequantized weights of a 4-bit folder. */
  Path dequantizedFolder(Path bnb) {
    Path out = tmp.resolve("dequantized");
    MergedExport.write(bnb, zeroAdapter(MistralConfig.load(bnb.resolve("config.json"))), out);
    return out;
  }

  static LoraAdapter zeroAdapter(MistralConfig cfg) {
    LoraAdapter a =
        LoraAdapter.initNew(
            cfg, 4, 8, LoraConfig.builder().allLinear().build().targets(), false, 1);
    Map<String, LoraAdapter.Weight> w = new LinkedHashMap<>();
    for (Map.Entry<String, LoraAdapter.Weight> e : a.weights().entrySet()) {
      LoraAdapter.Weight x = e.getValue();
      w.put(e.getKey(), new LoraAdapter.Weight(x.rows(), x.cols(), new float[x.values().length]));
    }
    return LoraAdapter.of(a.config(), DType.F32, w);
  }

  static LoraAdapter randomAdapter(MistralConfig cfg, long seed) {
    LoraAdapter a =
        LoraAdapter.initNew(
            cfg, 4, 8, LoraConfig.builder().allLinear().build().targets(), false, seed);
    SplittableRandom r = new SplittableRandom(seed);
    Map<String, LoraAdapter.Weight> w = new LinkedHashMap<>();
    for (Map.Entry<String, LoraAdapter.Weight> e : a.weights().entrySet()) {
      LoraAdapter.Weight x = e.getValue();
      float[] v = x.values().clone();
      for (int i = 0; i < v.length; i++) v[i] = (float) (r.nextGaussian() * 0.05);
      w.put(e.getKey(), new LoraAdapter.Weight(x.rows(), x.cols(), v));
    }
    return LoraAdapter.of(a.config(), DType.F32, w);
  }

  static double relErr(float[] got, float[] want) {
    double num = 0, den = 0;
    for (int i = 0; i < want.length; i++) {
      num += (got[i] - want[i]) * (double) (got[i] - want[i]);
      den += want[i] * (double) want[i];
    }
    return den == 0 ? Math.sqrt(num) : Math.sqrt(num / den);
  }

  @Test
  void qloraEqualsTheBf16PathOnTheDequantizedWeights() {
    Path bnb = bnbTiny(true);
    Path deq = dequantizedFolder(bnb);
    MistralConfig cfg = MistralConfig.load(bnb.resolve("config.json"));
    LoraAdapter adapter = randomAdapter(cfg, 7);
    SplittableRandom r = new SplittableRandom(3);
    int rows = 2, seq = 12;
    int[] ids = new int[rows * seq], labels = new int[rows * seq];
    for (int i = 0; i < ids.length; i++) {
      ids[i] = r.nextInt(cfg.vocabSize());
      labels[i] = i % 5 == 0 ? -100 : r.nextInt(cfg.vocabSize());
    }
    Batch batch = new Batch(rows, seq, ids, null, labels, null, null);
    AdamWConfig opt = AdamWConfig.defaults().withLr(1e-2);
    try (MistralModel q =
            MistralModel.load(Fixtures.hf("tiny", "model"), Device.cpu(), Quantization.nf4());
        MistralModel b = MistralModel.load(deq, Device.cpu())) {
      q.attachAdapter(adapter);
      b.attachAdapter(adapter);
      assertTrue(relErr(q.logits(batch), b.logits(batch)) <= 1e-5, "logits");
      for (int step = 0; step < 3; step++) {
        q.zeroGrad();
        b.zeroGrad();
        q.forwardBackward(batch, 1.0 / batch.countedTokens());
        b.forwardBackward(batch, 1.0 / batch.countedTokens());
        Map<String, LoraAdapter.Weight> gq = q.gradients(), gb = b.gradients();
        assertEquals(gb.keySet(), gq.keySet());
        for (String k : gb.keySet()) {
          double e = relErr(gq.get(k).values(), gb.get(k).values());
          assertTrue(e <= 1e-5, "step " + step + " gradient " + k + ": " + e);
        }
        StepResult sq = q.optimizerStep(opt), sb = b.optimizerStep(opt);
        assertEquals(sb.loss(), sq.loss(), 1e-5 * Math.abs(sb.loss()), "step " + step + " loss");
      }
      Map<String, LoraAdapter.Weight> pq = q.adapter().weights(), pb = b.adapter().weights();
      for (String k : pb.keySet()) {
        assertTrue(relErr(pq.get(k).values(), pb.get(k).values()) <= 1e-5, "AdamW x3: " + k);
      }
    }
  }

  @Test
  void mergedExportOfA4bitModelMergesInBf16() throws Exception {
    Path bnb = bnbTiny(true);
    Path deq = dequantizedFolder(bnb);
    MistralConfig cfg = MistralConfig.load(bnb.resolve("config.json"));
    LoraAdapter adapter = randomAdapter(cfg, 9);
    Path fromNf4 = tmp.resolve("merged-nf4"), fromBf16 = tmp.resolve("merged-bf16");
    MergedExport.write(bnb, adapter, fromNf4);
    MergedExport.write(deq, adapter, fromBf16);
    assertFalse(JSON.readTree(fromNf4.resolve("config.json").toFile()).has("quantization_config"));
    try (Checkpoint a = Checkpoint.open(fromNf4);
        Checkpoint b = Checkpoint.open(fromBf16)) {
      assertEquals(
          b.names().stream().sorted().toList(),
          a.names().stream().sorted().toList(),
          "no quantization tensor is left");
      for (String n : b.names()) {
        assertEquals(b.dtype(n), a.dtype(n), n);
        assertArrayEquals(b.readFloat(n), a.readFloat(n), n);
      }
      // and the adapter changed the weights
      try (Checkpoint d = Checkpoint.open(deq)) {
        assertFalse(java.util.Arrays.equals(d.readFloat(Q0), a.readFloat(Q0)));
      }
    }
  }

  // ---- validation ------------------------------------------------------------------------------

  /** Q0's quant state in dir set to state with each (from, to) pair of the rest replaced. */
  static void setState(Path dir, String state, String... fromTo) {
    for (int i = 0; i < fromTo.length; i += 2) state = state.replace(fromTo[i], fromTo[i + 1]);
    byte[] js = state.getBytes(StandardCharsets.UTF_8);
    replace(dir, Q0 + Bnb4bit.QUANT_STATE, DType.U8, new long[] {js.length}, js);
  }

  /** A one-file 4-bit model to corrupt. */
  Path bnbSingleFile() {
    MistralConfig cfg = MistralConfig.load(Fixtures.hf("tiny", "model").resolve("config.json"));
    Path bf16 = tmp.resolve("single-bf16");
    RandomModel.write(cfg, bf16, 5, 0.05, 0.05, null);
    Path out = tmp.resolve("single-nf4");
    Nf4Export.write(bf16, out, Quantization.nf4(), false);
    return out;
  }

  /**
   * Rewrites model.safetensors with one tensor replaced (or removed, when dtype is null; added when
   * absent).
   */
  static void replace(Path dir, String name, DType dtype, long[] shape, byte[] data) {
    Path f = dir.resolve("model.safetensors");
    SafetensorsWriter w = new SafetensorsWriter();
    byte[] all;
    try (SafetensorsFile in = SafetensorsFile.open(f)) {
      boolean found = false;
      for (TensorInfo t : in.tensors()) {
        if (t.name().equals(name)) {
          found = true;
          if (dtype != null) w.add(name, dtype, shape, data);
          continue;
        }
        byte[] b = new byte[(int) t.byteLength()];
        in.data(t.name()).get(b);
        w.add(t.name(), t.dtype(), t.shape(), b);
      }
      if (!found && dtype != null) w.add(name, dtype, shape, data);
      all = w.toBytes();
    }
    try {
      Files.write(f, all);
    } catch (java.io.IOException e) {
      throw new RuntimeException(e);
    }
  }

  static byte[] floats(float... v) {
    return DType.F32.fromFloats(v);
  }

  void expectRefused(Consumer<Path> corrupt, String... needles) {
    Path dir = bnbSingleFile();
    corrupt.accept(dir);
    Exception e =
        assertThrows(RuntimeException.class, () -> MistralModel.load(dir, Device.cpu()).close());
    for (String n : needles) {
      assertTrue(e.getMessage().contains(n), "message should name '" + n + "': " + e.getMessage());
    }
    FileTreeDelete.delete(tmp);
  }

  @Test
  void badQuantizationTensorsAreRefusedNamingTheTensor() {
    float[] fp4 = Nf4.table();
    fp4[3] = 0.25f;
    expectRefused(
        d -> replace(d, Q0 + ".quant_map", DType.F32, new long[] {16}, floats(fp4)),
        Q0 + ".quant_map",
        "NF4");
    expectRefused(
        d -> replace(d, Q0 + ".absmax", DType.U8, new long[] {63}, new byte[63]),
        Q0 + ".absmax",
        "shape [63]");
    expectRefused(
        d -> replace(d, Q0, DType.U8, new long[] {2047, 1}, new byte[2047]), Q0, "shape [2047, 1]");
    expectRefused(
        d -> replace(d, Q0, DType.I8, new long[] {2048, 1}, new byte[2048]), Q0, "dtype I8");
    expectRefused(
        d -> replace(d, Q0 + ".nested_quant_map", null, null, null),
        Q0 + ".nested_quant_map",
        "missing");
    expectRefused(
        d -> replace(d, Q0 + ".nested_absmax", DType.F32, new long[] {1}, floats(Float.NaN)),
        Q0 + ".nested_absmax",
        "NaN");
    String badState =
        "{\"quant_type\":\"fp4\",\"blocksize\":64,\"dtype\":\"bfloat16\","
            + "\"shape\":[64,64],\"nested_blocksize\":256,\"nested_dtype\":\"float32\","
            + "\"nested_offset\":0.01}";
    byte[] js = badState.getBytes(StandardCharsets.UTF_8);
    expectRefused(
        d -> replace(d, Q0 + Bnb4bit.QUANT_STATE, DType.U8, new long[] {js.length}, js),
        Q0 + Bnb4bit.QUANT_STATE,
        "quant_type is 'fp4'");
    expectRefused(
        d -> setState(d, badState, "fp4", "nf4", "[64,64]", "[64,32]"),
        Q0 + Bnb4bit.QUANT_STATE,
        "shape [64,32]",
        "[64, 64]");
    byte[] js3 = "{not json".getBytes(StandardCharsets.UTF_8);
    expectRefused(
        d -> replace(d, Q0 + Bnb4bit.QUANT_STATE, DType.U8, new long[] {js3.length}, js3),
        Q0 + Bnb4bit.QUANT_STATE,
        "not a JSON object");
    // a nested_blocksize past an int's reach: the nested absmax count computed in long (1), not
    // overflowed to 0 (a zero-length nested_absmax then passed, and the core read past it)
    expectRefused(
        d -> {
          setState(
              d,
              badState,
              "fp4",
              "nf4",
              "\"nested_blocksize\":256",
              "\"nested_blocksize\":2147483647");
          replace(d, Q0 + ".nested_absmax", DType.F32, new long[] {0}, new byte[0]);
        },
        Q0 + ".nested_absmax",
        "shape [0]");
    // scales the weight's dtype cannot hold: the weights would load as infinities
    expectRefused(
        d -> replace(d, Q0 + ".nested_absmax", DType.F32, new long[] {1}, floats(3.4e38f)),
        Q0 + Bnb4bit.QUANT_STATE,
        "beyond what the weight's dtype BF16 holds");
    expectRefused(
        d ->
            setState(d, badState, "fp4", "nf4", "\"nested_offset\":0.01", "\"nested_offset\":1e39"),
        Q0 + Bnb4bit.QUANT_STATE,
        "beyond the float range");
    // a block size bitsandbytes does not use
    expectRefused(
        d -> setState(d, badState, "fp4", "nf4", "\"blocksize\":64", "\"blocksize\":66"),
        Q0 + Bnb4bit.QUANT_STATE,
        "blocksize 66");
    // bitsandbytes' FP4: named as such (it was a shape error)
    expectRefused(
        d -> {
          replace(d, Q0 + Bnb4bit.QUANT_STATE, null, null, null);
          replace(d, Q0 + ".quant_state.bitsandbytes__fp4", DType.U8, new long[] {js.length}, js);
        },
        Q0 + ".quant_state.bitsandbytes__fp4",
        "FP4");
    // a uint8 weight whose quant state is gone
    expectRefused(
        d -> replace(d, Q0 + Bnb4bit.QUANT_STATE, null, null, null),
        Q0 + Bnb4bit.QUANT_STATE,
        "missing");
  }

  @Test
  void aFourBitConfigOverSixteenBitWeightsQuantizesOnLoad() throws Exception {
    // config.json says 4 bits, the weights are 16-bit: quantized while loading, as transformers
    // does (it loaded in 16 bits without a word)
    Path nf4 = bnbSingleFile();
    Path bf16 = tmp.resolve("single-bf16");
    JsonNode qc = JSON.readTree(nf4.resolve("config.json").toFile()).get("quantization_config");
    var cfg =
        (com.fasterxml.jackson.databind.node.ObjectNode)
            JSON.readTree(bf16.resolve("config.json").toFile());
    cfg.set("quantization_config", qc);
    Files.writeString(bf16.resolve("config.json"), JSON.writeValueAsString(cfg));
    try (MistralModel asked = MistralModel.load(bf16, Device.cpu());
        MistralModel pre = MistralModel.load(nf4, Device.cpu())) {
      assertEquals(pre.nf4Projections(), asked.nf4Projections());
      assertTrue(asked.nf4Projections() > 0);
      assertArrayEquals(pre.weight(Q0), asked.weight(Q0));
    }
  }

  @Test
  void aModuleBitsandbytesLeftIn16BitsStays16BitWithTheFlag() throws Exception {
    // bitsandbytes keeps llm_int8_skip_modules in 16 bits; the folder loads as it is, with or
    // without --load-in-4bit (before: the flag quantized the skipped module)
    Path dir = bnbSingleFile();
    for (String suffix :
        new String[] {
          ".absmax", ".quant_map", ".nested_absmax", ".nested_quant_map", Bnb4bit.QUANT_STATE
        }) {
      replace(dir, Q0 + suffix, null, null, null);
    }
    replace(dir, Q0, DType.BF16, new long[] {64, 64}, DType.BF16.fromFloats(new float[64 * 64]));
    try (MistralModel plain = MistralModel.load(dir, Device.cpu());
        MistralModel flagged = MistralModel.load(dir, Device.cpu(), Quantization.nf4())) {
      assertEquals(plain.nf4Projections(), flagged.nf4Projections());
      assertArrayEquals(new float[64 * 64], flagged.weight(Q0));
    }
  }

  @Test
  void unsupportedQuantizationConfigsAreRefused() throws Exception {
    for (String[] c :
        new String[][] {
          {"bnb_4bit_quant_type", "\"fp4\"", "only nf4"},
          {"load_in_8bit", "true", "8-bit"},
          {"quant_method", "\"gptq\"", "'gptq'"},
          {"bnb_4bit_quant_storage", "\"bfloat16\"", "uint8"}
        }) {
      Path dir = bnbSingleFile();
      Path cfg = dir.resolve("config.json");
      ObjectNode root = (ObjectNode) JSON.readTree(cfg.toFile());
      ((ObjectNode) root.get("quantization_config")).set(c[0], JSON.readTree(c[1]));
      Files.writeString(cfg, root.toString());
      Exception e =
          assertThrows(
              SafetensorsException.class, () -> MistralModel.load(dir, Device.cpu()).close());
      assertTrue(
          e.getMessage().contains("quantization_config") && e.getMessage().contains(c[2]),
          e.getMessage());
      FileTreeDelete.delete(tmp);
    }
  }

  // ---- memory
  // ------------------------------------------------------------------------------------

  @Test
  void mistral7bWeightMemoryPerTensor() {
    MistralConfig cfg =
        MistralConfig.load(Fixtures.resource("mistral-configs/mistral-7b-v0.3.config.json"));
    WeightMemory bf16 = WeightMemory.of(cfg, Quantization.none());
    WeightMemory nf4 = WeightMemory.of(cfg, Quantization.nf4());
    WeightMemory plain = WeightMemory.of(cfg, Quantization.nf4().withDoubleQuant(false));
    // q_proj 4096 x 4096: codes 8,388,608 + table 64 + 262,144 absmax codes + 1,024 x 4 nested
    // table + 1,024 x 4 nested absmax
    assertEquals(8_388_608L + 64 + 262_144 + 1_024 + 4_096, nf4.perTensor().get(Q0));
    // without double quantization: 262,144 fp32 absmax
    assertEquals(8_388_608L + 64 + 1_048_576, plain.perTensor().get(Q0));
    // gate_proj 14336 x 4096: 29,360,128 codes, 917,504 blocks, 3,584 nested blocks
    assertEquals(
        29_360_128L + 64 + 917_504 + 1_024 + 14_336,
        nf4.perTensor().get("model.layers.31.mlp.gate_proj.weight"));
    // 16-bit: the embedding, the LM head (32768 x 4096) and the norms
    assertEquals(268_435_456L, nf4.perTensor().get("lm_head.weight"));
    assertEquals(268_435_456L, nf4.perTensor().get("model.embed_tokens.weight"));
    assertEquals(8_192L, nf4.perTensor().get("model.norm.weight"));
    assertEquals(2L * 14336 * 4096, nf4.scratch());
    assertEquals(0L, bf16.scratch());
    // totals: 7,248,023,552 parameters; bf16 14,496,047,104 bytes
    assertEquals(14_496_047_104L, bf16.total());
    long perLayer =
        2 * (8_388_608L + 64 + 262_144 + 1_024 + 4_096)
            + 2 * (2_097_152L + 64 + 65_536 + 1_024 + 1_024)
            + 3 * (29_360_128L + 64 + 917_504 + 1_024 + 14_336)
            + 2 * 8_192;
    long want = 32 * perLayer + 2 * 268_435_456L + 8_192 + 2L * 14336 * 4096;
    assertEquals(want, nf4.total());
    assertEquals(4_255_504_384L, nf4.total(), "3.96 GiB, the scratch buffer included");
    assertTrue(nf4.total() < 4.0 * (1L << 30));
    assertTrue(plain.total() > nf4.total() + 300_000_000L, "double quantization saves 0.3 GB");
  }
}
