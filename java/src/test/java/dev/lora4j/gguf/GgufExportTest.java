package dev.lora4j.gguf;

import static org.junit.jupiter.api.Assertions.*;

import dev.lora4j.Fixtures;
import dev.lora4j.Lora4jException;
import dev.lora4j.cli.Main;
import dev.lora4j.model.MergedExport;
import dev.lora4j.model.MistralConfig;
import dev.lora4j.model.peft.LoraAdapter;
import dev.lora4j.model.peft.LoraTarget;
import dev.lora4j.safetensors.DType;
import dev.lora4j.safetensors.SafetensorsFile;
import dev.lora4j.tokenizer.ChatTemplate;
import dev.lora4j.tokenizer.Tokenizer;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.EnumSet;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The GGUF format as lora4j writes it, read back field by field; bad input; the Modelfile. */
class GgufExportTest {
  static final Path MODEL = Path.of("../examples/models/tiny-mistral");
  static final Path OTHER_ADAPTER = Path.of("src/test/resources/hf-reference/tiny/adapter_trained");
  static final Path OTHER_MODEL = Path.of("src/test/resources/hf-reference/tiny/model");

  @Test
  void q8_0BlocksAsGgmlDefinesThem() {
    float[] x = new float[64];
    // block 0: max |x| = 127, so d = 1 and q = roundf(x): halves round away from zero
    float[] head = {127f, -0.5f, 0.5f, 1.5f, -1.5f, 2.5f, -2.5f, 0.49999997f, -126.6f, 3.2f};
    System.arraycopy(head, 0, x, 0, head.length);
    // block 1: all zero
    byte[] b = GgmlType.Q8_0.encode(x);
    assertEquals(68, b.length);
    ByteBuffer bb = ByteBuffer.wrap(b).order(ByteOrder.LITTLE_ENDIAN);
    assertEquals((short) 0x3C00, bb.getShort(0), "d = 1.0 as fp16");
    byte[] want = {127, -1, 1, 2, -2, 3, -3, 0, -127, 3};
    for (int i = 0; i < want.length; i++) assertEquals(want[i], b[2 + i], "q[" + i + "]");
    assertEquals(0, bb.getShort(34), "a zero block has d = 0");
    for (int i = 0; i < 32; i++) assertEquals(0, b[36 + i]);
    float[] back = GgmlType.Q8_0.decode(ByteBuffer.wrap(b));
    assertEquals(-127f, back[8]);
    assertEquals(3f, back[9]);
    // a small scale: d = max / 127 rounded to fp16 (relative error 2^-11, times |q| <= 127), so
    // every value is within d/2 + 127 d 2^-11 < 0.57 d of the input
    SplittableRandom r = new SplittableRandom(1);
    float[] y = new float[32 * 50];
    for (int i = 0; i < y.length; i++) y[i] = (float) (r.nextGaussian() * 0.02);
    float[] yb = GgmlType.Q8_0.decode(ByteBuffer.wrap(GgmlType.Q8_0.encode(y)));
    for (int blk = 0; blk < 50; blk++) {
      float amax = 0;
      for (int j = 0; j < 32; j++) amax = Math.max(amax, Math.abs(y[blk * 32 + j]));
      for (int j = 0; j < 32; j++) {
        assertEquals(y[blk * 32 + j], yb[blk * 32 + j], amax / 127 * 0.57, "block " + blk);
      }
    }
    assertThrows(IllegalArgumentException.class, () -> GgmlType.Q8_0.encode(new float[33]));
  }

  @Test
  void writerAndReaderAgree(@TempDir Path tmp) throws Exception {
    float[] v = new float[96];
    for (int i = 0; i < v.length; i++) v[i] = i * 0.25f - 7;
    GgufWriter w =
        new GgufWriter()
            .putString("general.architecture", "llama")
            .putU32("n", 4000000000L)
            .putF32("f", 0.5)
            .putBool("b", true)
            .putStrings("s", List.of("a", "▁b", ""))
            .putF32s("fs", new float[] {1, -2})
            .putI32s("is", new int[] {-1, 6});
    w.tensor("t32", GgmlType.F32, new long[] {3}, () -> GgmlType.F32.encode(new float[] {1, 2, 3}));
    w.tensor("t16", GgmlType.F16, new long[] {32, 3}, () -> GgmlType.F16.encode(v));
    w.tensor("tb", GgmlType.BF16, new long[] {96}, () -> GgmlType.BF16.encode(v));
    w.tensor("tq", GgmlType.Q8_0, new long[] {32, 3}, () -> GgmlType.Q8_0.encode(v));
    Path f = tmp.resolve("x.gguf");
    w.write(f);
    byte[] raw = Files.readAllBytes(f);
    assertEquals("GGUF", new String(raw, 0, 4, StandardCharsets.US_ASCII));
    ByteBuffer bb = ByteBuffer.wrap(raw).order(ByteOrder.LITTLE_ENDIAN);
    assertEquals(3, bb.getInt(4));
    assertEquals(4, bb.getLong(8), "tensor count");
    assertEquals(7, bb.getLong(16), "metadata count");
    try (GgufFile g = GgufFile.open(f)) {
      assertEquals(3, g.version());
      assertEquals("llama", g.string("general.architecture"));
      assertEquals(4000000000L, g.integer("n"));
      assertEquals(0.5, (Double) g.get("f"));
      assertEquals(true, g.get("b"));
      assertEquals(List.of("a", "▁b", ""), g.get("s"));
      assertEquals(List.of(1.0, -2.0), g.get("fs"));
      assertEquals(List.of(-1L, 6L), g.get("is"));
      assertArrayEquals(new float[] {1, 2, 3}, g.readFloats("t32"));
      assertArrayEquals(v, g.readFloats("t16"));
      assertArrayEquals(v, g.readFloats("tb"));
      assertEquals(v.length, g.readFloats("tq").length);
      for (GgufFile.TensorInfo t : g.tensors().values()) assertEquals(0, t.offset() % 32, t.name());
      assertArrayEquals(new long[] {32, 3}, g.tensors().get("t16").ne());
    }
    // cut short: a clear error, not a wrong read
    Path cut = tmp.resolve("cut.gguf");
    Files.write(cut, java.util.Arrays.copyOf(raw, raw.length - 40));
    Lora4jException e = assertThrows(Lora4jException.class, () -> GgufFile.open(cut));
    assertTrue(
        e.getMessage().contains("tq") && e.getMessage().contains("outside the file"),
        e.getMessage());
    Files.write(cut, java.util.Arrays.copyOf(raw, 30));
    assertThrows(Lora4jException.class, () -> GgufFile.open(cut));
  }

  /**
   * The row permutation turns Hugging Face's rotate_half RoPE into llama.cpp's adjacent-pair RoPE:
   * rotating the permuted projection in llama.cpp's way gives the permuted rotation of the
   * original, so every attention score is the same.
   */
  @Test
  void permutedQueryAndKeyGiveTheSameScoresUnderLlamaCppRope() {
    int heads = 4, kvHeads = 2, d = 8, cols = 5, pos = 7;
    SplittableRandom r = new SplittableRandom(3);
    float[] wq = new float[heads * d * cols],
        wk = new float[kvHeads * d * cols],
        x = new float[cols];
    for (int i = 0; i < wq.length; i++) wq[i] = (float) r.nextGaussian();
    for (int i = 0; i < wk.length; i++) wk[i] = (float) r.nextGaussian();
    for (int i = 0; i < cols; i++) x[i] = (float) r.nextGaussian();
    double[] qHf = ropeHalf(matvec(wq, x, heads * d), heads, d, pos);
    double[] kHf = ropeHalf(matvec(wk, x, kvHeads * d), kvHeads, d, pos - 3);
    double[] qLl =
        ropeAdjacent(
            matvec(GgufExport.permuteRope(wq, heads * d, cols, heads), x, heads * d),
            heads,
            d,
            pos);
    double[] kLl =
        ropeAdjacent(
            matvec(GgufExport.permuteRope(wk, kvHeads * d, cols, kvHeads), x, kvHeads * d),
            kvHeads,
            d,
            pos - 3);
    for (int h = 0; h < heads; h++) {
      int kh = h / (heads / kvHeads);
      double sHf = 0, sLl = 0;
      for (int i = 0; i < d; i++) {
        sHf += qHf[h * d + i] * kHf[kh * d + i];
        sLl += qLl[h * d + i] * kLl[kh * d + i];
      }
      assertEquals(sHf, sLl, 1e-9 * (1 + Math.abs(sHf)), "score of head " + h);
    }
    // and the unpermuted weights do not
    double[] qBad = ropeAdjacent(matvec(wq, x, heads * d), heads, d, pos);
    double diff = 0;
    for (int i = 0; i < qBad.length; i++) diff = Math.max(diff, Math.abs(qBad[i] - qLl[i]));
    assertTrue(diff > 1e-3);
  }

  static double[] matvec(float[] w, float[] x, int rows) {
    double[] y = new double[rows];
    for (int i = 0; i < rows; i++)
      for (int j = 0; j < x.length; j++) y[i] += w[i * x.length + j] * x[j];
    return y;
  }

  static double[] ropeHalf(double[] v, int heads, int d, int pos) {
    double[] o = v.clone();
    for (int h = 0; h < heads; h++) {
      for (int i = 0; i < d / 2; i++) {
        double a = pos * Math.pow(10000, -2.0 * i / d), c = Math.cos(a), s = Math.sin(a);
        double x0 = v[h * d + i], x1 = v[h * d + i + d / 2];
        o[h * d + i] = x0 * c - x1 * s;
        o[h * d + i + d / 2] = x1 * c + x0 * s;
      }
    }
    return o;
  }

  static double[] ropeAdjacent(double[] v, int heads, int d, int pos) {
    double[] o = v.clone();
    for (int h = 0; h < heads; h++) {
      for (int i = 0; i < d / 2; i++) {
        double a = pos * Math.pow(10000, -2.0 * i / d), c = Math.cos(a), s = Math.sin(a);
        double x0 = v[h * d + 2 * i], x1 = v[h * d + 2 * i + 1];
        o[h * d + 2 * i] = x0 * c - x1 * s;
        o[h * d + 2 * i + 1] = x0 * s + x1 * c;
      }
    }
    return o;
  }

  @Test
  void modelFileCarriesMetadataTokenizerAndPermutedWeights(@TempDir Path tmp) throws Exception {
    MistralConfig cfg = MistralConfig.load(MODEL.resolve("config.json"));
    LoraAdapter adapter = trainedLikeAdapter(cfg, false);
    Path adapterDir = tmp.resolve("adapter");
    adapter.write(adapterDir);
    Path f = tmp.resolve("m.gguf");
    GgufExport.Result res = GgufExport.writeModel(MODEL, adapterDir, f, GgufExport.Type.F32, false);
    assertEquals(2 + 1 + cfg.numHiddenLayers() * 9, res.tensors());
    assertEquals(List.of(), res.notes());
    Tokenizer tok = Tokenizer.fromModelDir(MODEL);
    try (GgufFile g = GgufFile.open(f);
        SafetensorsFile st = SafetensorsFile.open(MODEL.resolve("model.safetensors"))) {
      Map<String, Long> ints =
          Map.of(
              "llama.context_length",
              512L,
              "llama.embedding_length",
              128L,
              "llama.block_count",
              4L,
              "llama.feed_forward_length",
              384L,
              "llama.attention.head_count",
              4L,
              "llama.attention.head_count_kv",
              2L,
              "llama.rope.dimension_count",
              32L,
              "general.file_type",
              0L,
              "tokenizer.ggml.bos_token_id",
              1L,
              "tokenizer.ggml.eos_token_id",
              2L);
      ints.forEach((k, v) -> assertEquals(v, g.integer(k), k));
      assertEquals("llama", g.string("general.architecture"));
      assertEquals(10000.0, (Double) g.get("llama.rope.freq_base"));
      assertEquals(1e-5, (Double) g.get("llama.attention.layer_norm_rms_epsilon"), 1e-12);
      assertNull(g.get("llama.attention.sliding_window"), "tiny-mistral has no window");
      assertNull(g.get("tokenizer.ggml.padding_token_id"), "tiny-mistral has no pad token");
      assertEquals(true, g.get("tokenizer.ggml.add_bos_token"));
      assertEquals(false, g.get("tokenizer.ggml.add_eos_token"));
      assertEquals(true, g.get("tokenizer.ggml.add_space_prefix"));
      assertEquals("llama", g.string("tokenizer.ggml.model"));
      assertEquals(ChatTemplate.fromModelDir(MODEL).source(), g.string("tokenizer.chat_template"));
      List<?> tokens = (List<?>) g.get("tokenizer.ggml.tokens");
      List<?> scores = (List<?>) g.get("tokenizer.ggml.scores");
      List<?> types = (List<?>) g.get("tokenizer.ggml.token_type");
      assertEquals(32000, tokens.size());
      assertEquals("▁t", tokens.get(tok.tokenToId("▁t")));
      assertEquals(0.0, scores.get(tok.tokenToId("▁t")), "the first merge scores highest");
      assertEquals(
          (double) -tok.firstMergeRank(tok.tokenToId("▁the")), scores.get(tok.tokenToId("▁the")));
      assertEquals(2L, types.get(0), "<unk>");
      assertEquals(3L, types.get(1), "<s>");
      assertEquals(3L, types.get(2), "</s>");
      assertEquals(6L, types.get(13), "<0x0A>");
      assertEquals(1L, types.get(tok.tokenToId("▁the")));

      // names and layouts: [out, in] becomes ne {in, out}; norms f32; q and k rows permuted
      assertArrayEquals(new long[] {128, 32000}, g.tensors().get("token_embd.weight").ne());
      assertArrayEquals(new long[] {128}, g.tensors().get("blk.3.ffn_norm.weight").ne());
      assertEquals(GgmlType.F32, g.tensors().get("blk.3.ffn_norm.weight").type());
      assertArrayEquals(
          st.readFloat("model.embed_tokens.weight"), g.readFloats("token_embd.weight"));
      assertArrayEquals(
          st.readFloat("model.layers.2.post_attention_layernorm.weight"),
          g.readFloats("blk.2.ffn_norm.weight"));
      for (LoraTarget t : LoraTarget.values()) {
        String hf = "model.layers.1." + t.modulePath() + ".weight";
        float[] want = st.readFloat(hf);
        MergedExport.fold(want, adapter.a(1, t), adapter.b(1, t), adapter.config().scale());
        float[] got = g.readFloats("blk.1." + GgufExport.ggufModule(t) + ".weight");
        int rows = t.outFeatures(cfg), cols = t.inFeatures(cfg), d = cfg.headDim();
        for (int row = 0; row < rows; row++) {
          int src = row;
          if (t == LoraTarget.Q_PROJ || t == LoraTarget.K_PROJ) {
            int h = row / d, i = (row % d) / 2, s = row % 2;
            src = h * d + s * d / 2 + i;
          }
          for (int c = 0; c < cols; c++) {
            assertEquals(
                want[src * cols + c], got[row * cols + c], t + " row " + row + " col " + c);
          }
        }
      }
    }
    // the adapter changed the weights: the base export differs from the merged one
    Path base = tmp.resolve("base.gguf");
    GgufExport.writeModel(MODEL, null, base, GgufExport.Type.F32, false);
    try (GgufFile a = GgufFile.open(f);
        GgufFile b = GgufFile.open(base)) {
      assertFalse(
          java.util.Arrays.equals(
              a.readFloats("blk.0.attn_v.weight"), b.readFloats("blk.0.attn_v.weight")));
      assertArrayEquals(a.readFloats("output.weight"), b.readFloats("output.weight"));
    }
  }

  /** An adapter of the model with non-zero A and B on every target. */
  static LoraAdapter trainedLikeAdapter(MistralConfig cfg, boolean rslora) {
    LoraAdapter a = LoraAdapter.initNew(cfg, 4, 8, EnumSet.allOf(LoraTarget.class), rslora, 5);
    SplittableRandom r = new SplittableRandom(9);
    for (Map.Entry<String, LoraAdapter.Weight> e : a.weights().entrySet()) {
      if (e.getKey().contains("lora_B")) {
        float[] v = e.getValue().values();
        for (int i = 0; i < v.length; i++) v[i] = (float) (r.nextGaussian() * 0.05);
      }
    }
    return a;
  }

  @Test
  void q8_0AndF16ExportsStayCloseToTheWeights(@TempDir Path tmp) throws Exception {
    Path q = tmp.resolve("q.gguf"), h = tmp.resolve("h.gguf");
    GgufExport.writeModel(MODEL, null, q, GgufExport.Type.Q8_0, false);
    GgufExport.writeModel(MODEL, null, h, GgufExport.Type.F16, false);
    assertTrue(Files.size(q) < 0.6 * Files.size(h), Files.size(q) + " vs " + Files.size(h));
    try (GgufFile gq = GgufFile.open(q);
        GgufFile gh = GgufFile.open(h);
        SafetensorsFile st = SafetensorsFile.open(MODEL.resolve("model.safetensors"))) {
      assertEquals(7L, gq.integer("general.file_type"));
      assertEquals(2L, gq.integer("general.quantization_version"));
      assertEquals(1L, gh.integer("general.file_type"));
      assertEquals(GgmlType.Q8_0, gq.tensors().get("blk.0.ffn_down.weight").type());
      assertEquals(GgmlType.F16, gh.tensors().get("blk.0.ffn_down.weight").type());
      assertEquals(GgmlType.F32, gq.tensors().get("output_norm.weight").type());
      float[] w = st.readFloat("model.layers.0.mlp.down_proj.weight");
      float[] wq = gq.readFloats("blk.0.ffn_down.weight"),
          wh = gh.readFloats("blk.0.ffn_down.weight");
      for (int b = 0; b < w.length / 32; b++) {
        float amax = 0;
        for (int j = 0; j < 32; j++) amax = Math.max(amax, Math.abs(w[b * 32 + j]));
        for (int j = 0; j < 32; j++) {
          int i = b * 32 + j;
          assertEquals(w[i], wq[i], amax / 127 * 0.57, "q8_0 " + i);
          assertEquals(DType.f16ToFloat(DType.floatToF16(w[i])), wh[i], "f16 " + i);
        }
      }
    }
  }

  @Test
  void adapterFileAsLlamaCppLoadsIt(@TempDir Path tmp) throws Exception {
    MistralConfig cfg = MistralConfig.load(MODEL.resolve("config.json"));
    for (boolean rs : new boolean[] {false, true}) {
      LoraAdapter adapter = trainedLikeAdapter(cfg, rs);
      Path dir = tmp.resolve("a" + rs);
      adapter.write(dir);
      Path f = tmp.resolve("a" + rs + ".gguf");
      GgufExport.Result res = GgufExport.writeAdapter(MODEL, dir, f, GgufExport.Type.F32, false);
      assertEquals(cfg.numHiddenLayers() * 7 * 2, res.tensors());
      try (GgufFile g = GgufFile.open(f)) {
        assertEquals("adapter", g.string("general.type"));
        assertEquals("lora", g.string("adapter.type"));
        assertEquals("llama", g.string("general.architecture"));
        // llama.cpp scales by alpha / rank: alpha, or alpha * sqrt(r) for rsLoRA
        assertEquals(rs ? 8 * Math.sqrt(4) : 8, (Double) g.get("adapter.lora.alpha"), 1e-5);
        GgufFile.TensorInfo a = g.tensors().get("blk.2.ffn_down.weight.lora_a");
        GgufFile.TensorInfo b = g.tensors().get("blk.2.ffn_down.weight.lora_b");
        assertArrayEquals(new long[] {384, 4}, a.ne(), "lora_a: ne {in, r}");
        assertArrayEquals(new long[] {4, 128}, b.ne(), "lora_b: ne {r, out}");
        assertArrayEquals(
            adapter.a(2, LoraTarget.DOWN_PROJ).values(),
            g.readFloats("blk.2.ffn_down.weight.lora_a"));
        float[] bq = adapter.b(3, LoraTarget.Q_PROJ).values();
        assertArrayEquals(
            GgufExport.permuteRope(bq, 128, 4, 4), g.readFloats("blk.3.attn_q.weight.lora_b"));
        float[] bk = adapter.b(3, LoraTarget.K_PROJ).values();
        assertArrayEquals(
            GgufExport.permuteRope(bk, 64, 4, 2), g.readFloats("blk.3.attn_k.weight.lora_b"));
        assertArrayEquals(
            adapter.b(3, LoraTarget.V_PROJ).values(), g.readFloats("blk.3.attn_v.weight.lora_b"));
      }
    }
    assertThrows(
        IllegalArgumentException.class,
        () ->
            GgufExport.writeAdapter(
                MODEL, tmp.resolve("afalse"), tmp.resolve("q.gguf"), GgufExport.Type.Q8_0, false));
  }

  static void assertNothingWritten(Path dir, Path out) throws Exception {
    assertFalse(Files.exists(out), out + " was left behind");
    try (Stream<Path> s = Files.list(dir)) {
      assertEquals(
          List.of(), s.filter(p -> p.getFileName().toString().contains(".partial")).toList());
    }
  }

  @Test
  void badInputIsAClearErrorAndLeavesNoFile(@TempDir Path tmp) throws Exception {
    // a model folder that lacks a tensor
    Path broken = tmp.resolve("broken");
    copyModel(broken, "model.layers.1.mlp.up_proj.weight", null);
    Path out = tmp.resolve("out.gguf");
    Exception e =
        assertThrows(
            Lora4jException.class,
            () -> GgufExport.writeModel(broken, null, out, GgufExport.Type.F16, false));
    assertTrue(
        e.getMessage().contains("model.layers.1.mlp.up_proj.weight")
            && e.getMessage().contains("missing"),
        e.getMessage());
    assertNothingWritten(tmp, out);

    // an adapter trained for another model
    e =
        assertThrows(
            Lora4jException.class,
            () -> GgufExport.writeModel(MODEL, OTHER_ADAPTER, out, GgufExport.Type.F16, false));
    assertTrue(
        e.getMessage().contains("shape") || e.getMessage().contains("layers"), e.getMessage());
    assertNothingWritten(tmp, out);
    assertThrows(
        Lora4jException.class,
        () -> GgufExport.writeAdapter(MODEL, OTHER_ADAPTER, out, GgufExport.Type.F32, false));
    assertNothingWritten(tmp, out);

    // a failure while the file is being written (a weight that is not finite): no partial file
    Path nan = tmp.resolve("nan");
    copyModel(nan, null, "model.layers.3.self_attn.o_proj.weight");
    e =
        assertThrows(
            Lora4jException.class,
            () -> GgufExport.writeModel(nan, null, out, GgufExport.Type.Q8_0, false));
    assertTrue(
        e.getMessage().contains("model.layers.3.self_attn.o_proj.weight")
            && e.getMessage().contains("not finite"),
        e.getMessage());
    assertNothingWritten(tmp, out);

    // an existing file is refused without overwrite, replaced with it; an input is never an output
    Files.writeString(out, "keep");
    e =
        assertThrows(
            Lora4jException.class,
            () -> GgufExport.writeModel(MODEL, null, out, GgufExport.Type.F16, false));
    assertTrue(e.getMessage().contains("exists"), e.getMessage());
    assertEquals("keep", Files.readString(out));
    GgufExport.writeModel(MODEL, null, out, GgufExport.Type.F16, true);
    assertEquals("GGUF", new String(Files.readAllBytes(out), 0, 4, StandardCharsets.US_ASCII));
    Path copy = tmp.resolve("copy");
    copyModel(copy, null, null);
    e =
        assertThrows(
            Lora4jException.class,
            () ->
                GgufExport.writeModel(
                    copy, null, copy.resolve("config.json"), GgufExport.Type.F16, true));
    assertTrue(e.getMessage().contains("destroy"), e.getMessage());
    assertTrue(Files.readString(copy.resolve("config.json")).contains("mistral"));
    // a new file inside the model folder is fine (llama.cpp's converter writes there too)
    GgufExport.writeModel(copy, null, copy.resolve("model-f16.gguf"), GgufExport.Type.F16, false);
  }

  @Test
  void modelfileNeverOverwritesWhatItNames(@TempDir Path tmp) throws Exception {
    Path copy = tmp.resolve("copy");
    copyModel(copy, null, null);
    Path gguf = tmp.resolve("m.gguf");
    Files.writeString(gguf, "GGUF stand-in");
    Path adapter = tmp.resolve("a.gguf");
    Files.writeString(adapter, "GGUF adapter stand-in");
    String config = Files.readString(copy.resolve("config.json"));
    // the GGUF it names (FROM or ADAPTER), the model folder, or a file inside it: refused even
    // with overwrite, nothing changed
    for (Path bad : List.of(gguf, adapter, copy, copy.resolve("config.json"))) {
      Exception e =
          assertThrows(
              Lora4jException.class,
              () -> OllamaModelfile.write(bad, gguf, adapter, copy, true),
              bad.toString());
      assertTrue(
          e.getMessage().contains("destroy") && e.getMessage().contains(bad.toString()),
          e.getMessage());
    }
    assertEquals("GGUF stand-in", Files.readString(gguf));
    assertEquals("GGUF adapter stand-in", Files.readString(adapter));
    assertEquals(config, Files.readString(copy.resolve("config.json")));
    // beside the GGUF, and as a new file inside the model folder: written
    Path beside = OllamaModelfile.besides(gguf);
    OllamaModelfile.write(beside, gguf, adapter, copy, false);
    assertTrue(Files.readString(beside).contains("FROM ./m.gguf"), Files.readString(beside));
    OllamaModelfile.write(copy.resolve("Modelfile"), gguf, null, copy, false);
    assertTrue(Files.exists(copy.resolve("Modelfile")));
  }

  /** Copies tiny-mistral, leaving out one tensor or making one hold a NaN. */
  static void copyModel(Path dir, String drop, String poison) throws Exception {
    Fixtures.copyTinyMistral(dir, drop, poison);
  }

  @Test
  void baseModelCheck(@TempDir Path tmp) {
    Path base = tmp.resolve("base.gguf");
    GgufExport.writeModel(MODEL, null, base, GgufExport.Type.Q8_0, false);
    GgufExport.checkBaseModel(base, MODEL);
    Lora4jException e =
        assertThrows(Lora4jException.class, () -> GgufExport.checkBaseModel(base, OTHER_MODEL));
    assertTrue(e.getMessage().contains("not a GGUF of"), e.getMessage());
  }

  @Test
  void aTemplateThatPrintsTheDateIsNoted(@TempDir Path tmp) throws Exception {
    // a chat template that prints today's date renders the export's date into the TEMPLATE
    Path copy = tmp.resolve("copy");
    copyModel(copy, null, null);
    com.fasterxml.jackson.databind.ObjectMapper json =
        new com.fasterxml.jackson.databind.ObjectMapper();
    var tc =
        (com.fasterxml.jackson.databind.node.ObjectNode)
            json.readTree(Files.readString(copy.resolve("tokenizer_config.json")));
    tc.put("chat_template", "{{ strftime_now('%Y') }}" + tc.get("chat_template").asText());
    Files.writeString(copy.resolve("tokenizer_config.json"), json.writeValueAsString(tc));
    Path gguf = tmp.resolve("m.gguf");
    Files.writeString(gguf, "GGUF stand-in");
    Path mf = OllamaModelfile.besides(gguf);
    List<String> notes = OllamaModelfile.write(mf, gguf, null, copy, false);
    assertTrue(notes.stream().anyMatch(n -> n.contains("strftime_now")), notes.toString());
    assertTrue(Files.readString(mf).contains("# the chat template calls strftime_now"));
    // the shipped template has no date: no such note
    Path plain = tmp.resolve("plain.Modelfile");
    assertTrue(
        OllamaModelfile.write(plain, gguf, null, MODEL, false).stream()
            .noneMatch(n -> n.contains("strftime_now")));
  }

  @Test
  void modelfileTemplateFromTheChatTemplate() {
    ChatTemplate mistral = ChatTemplate.fromModelDir(MODEL);
    OllamaModelfile.Pieces p = OllamaModelfile.derive(mistral, "<s>", true);
    assertEquals("", p.start(), "BOS left to llama.cpp");
    assertEquals("[INST] ", p.userPre());
    assertEquals(" [/INST]", p.userPost());
    assertEquals("", p.assistantPre());
    assertEquals("</s> ", p.assistantPost());
    assertNull(p.systemPre(), "the template raises on a system message");
    assertEquals(
        "{{ range $i, $m := .Messages }}{{ $last := eq (len (slice $.Messages $i)) 1 }}{{ if eq"
            + " $m.Role \"user\" }}[INST] {{ $m.Content }} [/INST]{{ else if eq $m.Role"
            + " \"assistant\" }}{{ $m.Content }}{{ if not $last }}</s> {{ end }}{{ end }}{{ end }}",
        p.goTemplate());

    ChatTemplate chatml =
        ChatTemplate.of(
            "{% for m in messages %}{{ '<|im_start|>' + m['role'] + '\\n"
                + "' + m['content'] + '<|im_end|>\\n"
                + "' }}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n"
                + "' }}{% endif %}",
            null, "<|im_end|>");
    OllamaModelfile.Pieces c = OllamaModelfile.derive(chatml, null, false);
    assertEquals("<|im_start|>user\n", c.userPre());
    assertEquals("<|im_end|>\n", c.userPost());
    assertEquals("<|im_start|>assistant\n", c.assistantPre());
    assertEquals("<|im_start|>assistant\n", c.generationPrompt());
    assertEquals("<|im_start|>system\n", c.systemPre());
    assertEquals("<|im_end|>\n", c.systemPost());

    // a template that moves the system message into the last user turn does not split into
    // turns with a system piece; one that writes the conversation out of order not at all
    ChatTemplate odd =
        ChatTemplate.of(
            "{% for m in messages|reverse %}{{ m['content'] }}{% endfor %}", null, null);
    assertThrows(Lora4jException.class, () -> OllamaModelfile.derive(odd, null, false));
  }

  /** export-gguf --lora of adapter for model, --output out, --base-gguf base, and more flags. */
  static String loraCli(Path model, Path adapter, Path out, Path base, String... more) {
    List<String> a = new java.util.ArrayList<>();
    a.addAll(
        List.of(
            "export-gguf",
            "--model",
            model.toString(),
            "--adapter",
            adapter.toString(),
            "--lora",
            "--output",
            out.toString(),
            "--base-gguf",
            base.toString()));
    a.addAll(List.of(more));
    return runCli(a.toArray(new String[0]));
  }

  static String runCli(String... args) {
    StringWriter err = new StringWriter();
    PrintStream old = System.out;
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    System.setOut(new PrintStream(out, true, StandardCharsets.UTF_8));
    int code;
    try {
      code = Main.run(args, new PrintWriter(new StringWriter(), true), new PrintWriter(err, true));
    } finally {
      System.setOut(old);
    }
    return code + "\n" + out.toString(StandardCharsets.UTF_8) + err;
  }

  @Test
  void commandLineWritesAdapterBaseAndModelfile(@TempDir Path tmp) throws Exception {
    MistralConfig cfg = MistralConfig.load(MODEL.resolve("config.json"));
    Path adapter = tmp.resolve("adapter");
    trainedLikeAdapter(cfg, false).write(adapter);
    Path out = tmp.resolve("gguf/adapter.gguf"), base = tmp.resolve("gguf/base-q8_0.gguf");
    String r = loraCli(MODEL, adapter, out, base, "--type", "q8_0");
    assertTrue(r.startsWith("1\n") && r.contains("q8_0 does not go with --lora"), r);
    r = loraCli(MODEL, adapter, out, base);
    assertTrue(r.startsWith("0\n"), r);
    assertTrue(Files.isRegularFile(out) && Files.isRegularFile(base), r);
    String mf = Files.readString(tmp.resolve("gguf/adapter.Modelfile"));
    assertTrue(
        mf.contains("\nFROM ./base-q8_0.gguf\nADAPTER ./adapter.gguf\nTEMPLATE \"\"\"{{ range"),
        mf);
    assertTrue(mf.contains("PARAMETER stop \"</s>\"\nPARAMETER stop \"[INST]\"\n"), mf);
    try (GgufFile g = GgufFile.open(base)) {
      assertEquals(
          1L, g.integer("general.file_type"), "the base is f16 unless --type says otherwise");
    }
    // again: the outputs exist
    r = loraCli(MODEL, adapter, out, base);
    assertTrue(r.startsWith("1\n") && r.contains("exists") && r.contains("--overwrite"), r);
    // with --overwrite the adapter and Modelfile are replaced and the existing base is checked, not
    // rewritten
    long baseTime = Files.getLastModifiedTime(base).toMillis();
    r = loraCli(MODEL, adapter, out, base, "--overwrite");
    assertTrue(r.startsWith("0\n"), r);
    assertEquals(baseTime, Files.getLastModifiedTime(base).toMillis());
    // a merged q8_0 model with its Modelfile
    Path merged = tmp.resolve("gguf/merged.gguf");
    r =
        runCli(
            "export-gguf",
            "--model",
            MODEL.toString(),
            "--adapter",
            adapter.toString(),
            "--output",
            merged.toString(),
            "--type",
            "q8_0");
    assertTrue(r.startsWith("0\n") && r.contains("merged model written"), r);
    assertTrue(
        Files.readString(tmp.resolve("gguf/merged.Modelfile"))
            .contains("\nFROM ./merged.gguf\nTEMPLATE"));
  }

  @Test
  void tensorsOfMoreThanOneArrayGoInParts(@TempDir Path tmp) throws Exception {
    // a tensor's bytes in parts of whole blocks (an f32 tensor of more than 2 GiB fits no array):
    // the parts concatenated are the one-array encoding, and the writer writes them in order
    float[] v = new float[32 * 37];
    SplittableRandom r = new SplittableRandom(3);
    for (int i = 0; i < v.length; i++) v[i] = (float) r.nextGaussian();
    for (GgmlType t : List.of(GgmlType.F32, GgmlType.F16, GgmlType.BF16, GgmlType.Q8_0)) {
      byte[] whole = t.encode(v);
      byte[][] parts = t.encodeParts(v, 100);
      assertTrue(parts.length > 3, t + ": " + parts.length + " parts");
      ByteArrayOutputStream cat = new ByteArrayOutputStream();
      for (byte[] p : parts) cat.write(p);
      assertArrayEquals(whole, cat.toByteArray(), t.toString());
      assertEquals(1, t.encodeParts(v).length, t.toString());
    }
    GgufWriter w = new GgufWriter().putString("general.architecture", "llama");
    w.tensorParts("p", GgmlType.F32, new long[] {32, 37}, () -> GgmlType.F32.encodeParts(v, 100));
    w.tensor(
        "after", GgmlType.F32, new long[] {3}, () -> GgmlType.F32.encode(new float[] {1, 2, 3}));
    Path f = tmp.resolve("parts.gguf");
    w.write(f);
    try (GgufFile g = GgufFile.open(f)) {
      assertArrayEquals(v, g.readFloats("p"));
      assertArrayEquals(new float[] {1, 2, 3}, g.readFloats("after"));
    }
  }

  @Test
  void aMergedExportIsNoBaseForTheAdapter(@TempDir Path tmp) throws Exception {
    // the adapter folded into a GGUF, then that GGUF given as the adapter's base: llama.cpp would
    // apply the adapter twice
    MistralConfig cfg = MistralConfig.load(MODEL.resolve("config.json"));
    Path adapter = tmp.resolve("adapter");
    trainedLikeAdapter(cfg, false).write(adapter);
    Path merged = tmp.resolve("merged.gguf");
    GgufExport.writeModel(MODEL, adapter, merged, GgufExport.Type.Q8_0, false);
    Lora4jException e =
        assertThrows(Lora4jException.class, () -> GgufExport.checkBaseModel(merged, MODEL));
    assertTrue(e.getMessage().contains("merged export"), e.getMessage());
    Path out = tmp.resolve("a.gguf");
    String r = loraCli(MODEL, adapter, out, merged);
    assertTrue(r.startsWith("1\n") && r.contains("merged export"), r);
    assertFalse(Files.exists(out), r);
    // the base model's own export is one
    Path base = tmp.resolve("base.gguf");
    GgufExport.writeModel(MODEL, null, base, GgufExport.Type.Q8_0, false);
    GgufExport.checkBaseModel(base, MODEL);
  }

  @Test
  void withLoraABadBaseOrModelfilePathLeavesNeitherFile(@TempDir Path tmp) throws Exception {
    MistralConfig cfg = MistralConfig.load(MODEL.resolve("config.json"));
    Path adapter = tmp.resolve("adapter");
    trainedLikeAdapter(cfg, false).write(adapter);
    // a model folder the base cannot be exported from (no tokenizer.json): refused before the
    // adapter file is written, not after
    Path notok = tmp.resolve("notok");
    copyModel(notok, null, null);
    Files.delete(notok.resolve("tokenizer.json"));
    Path out = tmp.resolve("o/a.gguf"), base = tmp.resolve("o/base.gguf");
    String r = loraCli(notok, adapter, out, base);
    assertTrue(r.startsWith("1\n") && r.contains("tokenizer.json"), r);
    assertFalse(Files.exists(out) || Files.exists(base), r);
    // --base-gguf at the Modelfile's own path (beside --output): refused before anything is written
    Path clash = OllamaModelfile.besides(out);
    r = loraCli(MODEL, adapter, out, clash);
    assertTrue(r.startsWith("1\n") && r.contains("Modelfile"), r);
    assertFalse(Files.exists(out) || Files.exists(clash), r);
    // an adapter value f16 cannot hold: neither file
    LoraAdapter big = trainedLikeAdapter(cfg, false);
    big.weights().values().iterator().next().values()[0] = 1e6f;
    Path bigDir = tmp.resolve("big");
    big.write(bigDir);
    r = loraCli(MODEL, bigDir, out, base, "--type", "f16");
    assertTrue(r.startsWith("1\n") && r.contains("range of f16"), r);
    assertFalse(Files.exists(out) || Files.exists(base), r);
  }

  @Test
  void aFourBitFolderIsSentToMergeFirst(@TempDir Path tmp) {
    Path nf4 = tmp.resolve("nf4");
    dev.lora4j.model.nf4.Nf4Export.write(MODEL, nf4, dev.lora4j.Quantization.nf4(), false);
    Path out = tmp.resolve("m.gguf");
    Lora4jException e =
        assertThrows(
            Lora4jException.class,
            () -> GgufExport.writeModel(nf4, null, out, GgufExport.Type.F16, false));
    assertTrue(
        e.getMessage().contains("4-bit") && e.getMessage().contains("lora4j merge"),
        e.getMessage());
    assertFalse(Files.exists(out));
  }
}
