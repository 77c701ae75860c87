package dev.lora4j.golden;

import static org.junit.jupiter.api.Assertions.*;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.lora4j.AdamWConfig;
import dev.lora4j.Batch;
import dev.lora4j.Device;
import dev.lora4j.LossSum;
import dev.lora4j.MistralModel;
import dev.lora4j.StepResult;
import dev.lora4j.model.peft.LoraAdapter;
import dev.lora4j.safetensors.SafetensorsFile;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * The engine against Hugging Face transformers + PEFT computed in float64
 * (src/test/resources/hf-reference, see its README). Every comparison is norm-wise, ||got - ref|| /
 * ||ref||, and is printed so the measured errors are on record.
 */
class GoldenTest {
  static final Path ROOT = Path.of("src/test/resources/hf-reference");
  static final List<String> REPORT = new ArrayList<>();

  /** The device the golden tests run on: -Dlora4j.test.device=cuda on a GPU machine. */
  static Device device() {
    return Device.parse(System.getProperty("lora4j.test.device", "cpu"));
  }

  static boolean cuda() {
    return device().isCuda();
  }

  /** Tolerance: the CPU engine's (fp32) or the CUDA engine's (bf16). */
  static double tol(double cpu, double gpu) {
    return cuda() ? gpu : cpu;
  }

  record Ref(SafetensorsFile file, JsonNode json, Batch batch) implements AutoCloseable {
    double[] d(String name) {
      return file.readDouble(name);
    }

    @Override
    public void close() {
      file.close();
    }
  }

  static Ref ref(String c) throws Exception {
    SafetensorsFile f = SafetensorsFile.open(ROOT.resolve(c).resolve("reference.safetensors"));
    JsonNode json = new ObjectMapper().readTree(ROOT.resolve(c).resolve("reference.json").toFile());
    long[] shape = f.tensor("input_ids").shape();
    int rows = (int) shape[0], seq = (int) shape[1];
    Batch b =
        new Batch(
            rows,
            seq,
            ints(f.readLong("input_ids")),
            ints(f.readLong("attention_mask")),
            ints(f.readLong("labels")),
            null,
            null);
    return new Ref(f, json, b);
  }

  static int[] ints(long[] v) {
    int[] r = new int[v.length];
    for (int i = 0; i < v.length; i++) r[i] = Math.toIntExact(v[i]);
    return r;
  }

  static double relErr(float[] got, double[] ref) {
    assertEquals(ref.length, got.length, "length");
    double num = 0, den = 0;
    for (int i = 0; i < ref.length; i++) {
      assertFalse(Float.isNaN(got[i]), "NaN at " + i);
      double d = got[i] - ref[i];
      num += d * d;
      den += ref[i] * ref[i];
    }
    return Math.sqrt(num / den);
  }

  /** Error over rows*seq positions of width w where the attention mask is 1. */
  static double maskedErr(float[] got, double[] ref, int[] mask, int w) {
    double num = 0, den = 0;
    for (int p = 0; p < mask.length; p++) {
      if (mask[p] == 0) continue;
      for (int j = 0; j < w; j++) {
        int i = p * w + j;
        assertFalse(Float.isNaN(got[i]), "NaN at " + i);
        double d = got[i] - ref[i];
        num += d * d;
        den += ref[i] * ref[i];
      }
    }
    return Math.sqrt(num / den);
  }

  static void check(String c, String what, double err, double tol) {
    String line = String.format(Locale.ROOT, "%-12s %-34s %.3e (<= %.0e)", c, what, err, tol);
    synchronized (REPORT) {
      REPORT.add(line);
    }
    System.out.println("golden " + line);
    assertTrue(err <= tol, line);
  }

  /** A figure recorded for the report without a bound (what the GPU is not held to). */
  static void info(String c, String what, double value) {
    String line = String.format(Locale.ROOT, "%-12s %-34s %.3e (info)", c, what, value);
    synchronized (REPORT) {
      REPORT.add(line);
    }
    System.out.println("golden " + line);
  }

  @AfterAll
  static void report() {
    System.out.println("=== golden comparisons (" + device() + ") ===");
    REPORT.forEach(System.out::println);
  }

  static MistralModel load(String c) {
    return MistralModel.load(ROOT.resolve(c).resolve("model"), device());
  }

  @ParameterizedTest
  @ValueSource(strings = {"tiny", "tiny-sliding", "hd128"})
  void forwardHiddenStatesLogitsAndLoss(String c) throws Exception {
    try (Ref r = ref(c);
        MistralModel m = load(c)) {
      int h = m.config().hiddenSize(), v = m.config().vocabSize();
      int n = r.batch().rows() * r.batch().seq();
      int[] mask = r.batch().attentionMask();
      float[] hs = m.hiddenStates(r.batch());
      for (int k = 0; k <= m.config().numHiddenLayers(); k++) {
        float[] layer = java.util.Arrays.copyOfRange(hs, k * n * h, (k + 1) * n * h);
        check(
            c,
            "base.hidden." + k,
            maskedErr(layer, r.d("base.hidden." + k), mask, h),
            tol(1e-5, 2e-2));
      }
      check(
          c,
          "base.logits",
          maskedErr(m.logits(r.batch()), r.d("base.logits"), mask, v),
          tol(1e-5, 2e-2));
      double loss = m.evalLoss(r.batch());
      check(
          c,
          "base.loss",
          Math.abs(loss - r.d("base.loss")[0]) / r.d("base.loss")[0],
          tol(1e-5, 1.25e-3));

      // PEFT's saved adapter, loaded by us, reproduces PEFT's logits and loss.
      m.attachAdapter(ROOT.resolve(c).resolve("adapter_init"));
      check(
          c,
          "lora.logits",
          maskedErr(m.logits(r.batch()), r.d("lora.logits"), mask, v),
          tol(1e-5, 2e-2));
      double lloss = m.evalLoss(r.batch());
      check(
          c,
          "lora.loss",
          Math.abs(lloss - r.d("lora.loss")[0]) / r.d("lora.loss")[0],
          tol(1e-5, 1.25e-3));
    }
  }

  @ParameterizedTest
  @ValueSource(strings = {"tiny", "tiny-sliding", "hd128"})
  void everyLoraGradient(String c) throws Exception {
    try (Ref r = ref(c);
        MistralModel m = load(c)) {
      m.attachAdapter(ROOT.resolve(c).resolve("adapter_init"));
      m.zeroGrad();
      long tokens = r.batch().countedTokens();
      LossSum ls = m.forwardBackward(r.batch(), 1.0 / tokens);
      assertEquals(tokens, ls.tokens());
      check(
          c,
          "loss (forward_backward)",
          Math.abs(ls.mean() - r.d("lora.loss")[0]) / r.d("lora.loss")[0],
          tol(1e-5, 1.25e-3));
      double worst = 0;
      String worstName = "";
      int count = 0;
      for (Map.Entry<String, LoraAdapter.Weight> t : m.gradients().entrySet()) {
        String refName = "grad." + t.getKey().replace(".weight", ".default.weight");
        double err = relErr(t.getValue().values(), r.d(refName));
        if (err > worst) {
          worst = err;
          worstName = t.getKey();
        }
        assertTrue(err <= tol(1e-4, 3e-2), c + " gradient " + t.getKey() + " error " + err);
        count++;
      }
      assertEquals(r.file().names().stream().filter(s -> s.startsWith("grad.")).count(), count);
      check(c, "worst of " + count + " LoRA grads", worst, tol(1e-4, 3e-2));
      System.out.println("golden " + c + " worst gradient: " + worstName);
    }
  }

  static AdamWConfig adamw(JsonNode j) {
    JsonNode a = j.get("adamw");
    return new AdamWConfig(
        a.get("lr").asDouble(),
        a.get("betas").get(0).asDouble(),
        a.get("betas").get(1).asDouble(),
        a.get("eps").asDouble(),
        a.get("weight_decay").asDouble(),
        a.get("clip_norm").asDouble());
  }

  @ParameterizedTest
  @ValueSource(strings = {"tiny", "tiny-sliding", "hd128"})
  void threeAdamWStepsWithClipping(String c) throws Exception {
    try (Ref r = ref(c);
        MistralModel m = load(c)) {
      m.attachAdapter(ROOT.resolve(c).resolve("adapter_init"));
      LoraAdapter init = m.adapter();
      AdamWConfig opt = adamw(r.json());
      double[] losses = r.d("adamw.losses"), norms = r.d("adamw.grad_norms");
      for (int s = 0; s < losses.length; s++) {
        StepResult res = m.trainStep(r.batch(), opt);
        assertTrue(res.applied());
        check(
            c,
            "adamw.loss[" + s + "]",
            Math.abs(res.loss() - losses[s]) / losses[s],
            tol(1e-5, 8e-3));
        check(
            c,
            "adamw.grad_norm[" + s + "]",
            Math.abs(res.gradNorm() - norms[s]) / norms[s],
            tol(1e-4, 3e-2));
      }
      LoraAdapter fin = m.adapter();
      double num = 0, den = 0, norm = 0;
      for (String k : fin.keys()) {
        float[] got = fin.weight(k).values();
        float[] start = init.weight(k).values();
        double[] want = r.d("adamw.final." + k.replace(".weight", ".default.weight"));
        for (int i = 0; i < got.length; i++) {
          num += (got[i] - want[i]) * (got[i] - want[i]);
          den += (want[i] - start[i]) * (want[i] - start[i]);
          norm += want[i] * want[i];
        }
      }
      // The final parameters against the reference's, ||got - ref|| / ||ref|| over every LoRA
      // tensor: the measure and the bound of native/tests/test_engine_cuda.cpp ("adamw 3 steps
      // final params", 1e-1 on the GPU). On the GPU, AdamW's first steps move each element by
      // about lr x sign(gradient), so elements whose gradient is near zero flip with bf16 noise;
      // measured against the size of the update alone that is reported, not bounded.
      check(c, "adamw.final params", Math.sqrt(num / norm), tol(5e-4, 1e-1));
      if (cuda()) info(c, "adamw.final (vs update size)", Math.sqrt(num / den));
      else check(c, "adamw.final (vs update size)", Math.sqrt(num / den), 1e-3);
    }
  }

  @ParameterizedTest
  @ValueSource(strings = {"tiny", "tiny-sliding", "hd128"})
  void greedyGenerationWithTrainedAdapter(String c) throws Exception {
    try (Ref r = ref(c);
        MistralModel m = load(c)) {
      m.attachAdapter(ROOT.resolve(c).resolve("adapter_trained"));
      int[] prompt = ints(r.file().readLong("generate.prompt"));
      int[] want = ints(r.file().readLong("generate.output"));
      int[] got = m.generateGreedy(prompt, want.length - prompt.length, -1);
      // every token asked for (no EOS stop here): a short output would leave the tail unchecked
      assertEquals(want.length - prompt.length, got.length, c + " greedy tokens produced");
      int[] all = new int[prompt.length + got.length];
      System.arraycopy(prompt, 0, all, 0, prompt.length);
      System.arraycopy(got, 0, all, prompt.length, got.length);
      // A next token whose top two logits are closer than the engine's own logit error may go
      // either way, and the rest of the sequence with it (hd128's tenth token: top two 0.071
      // apart in fp32, within the CUDA engine's error). Both engines' logits, teacher-forced on
      // the reference's tokens, give each step's tie margin: twice the largest difference
      // between this engine's logits and the CPU engine's at that step (zero on the CPU, where
      // every token must be the reference's). Held: the reference's tokens up to the first step
      // whose CPU top two are within that margin, and at that step one of the two (as
      // native/tests/test_engine_cuda.cpp holds the CUDA engine).
      int v = m.config().vocabSize();
      Batch forced = Batch.of(Arrays.copyOf(want, want.length - 1));
      float[] eng = m.logits(forced);
      float[] cpu = eng;
      if (cuda()) {
        try (MistralModel cm = MistralModel.load(ROOT.resolve(c).resolve("model"), Device.cpu())) {
          cm.attachAdapter(ROOT.resolve(c).resolve("adapter_trained"));
          cpu = cm.logits(forced);
        }
      }
      int[] tie = firstNearTie(eng, cpu, v, prompt.length - 1, got.length);
      int before = tie[0];
      int[] wantBefore = Arrays.copyOf(want, prompt.length + before);
      int[] gotBefore = Arrays.copyOf(all, prompt.length + before);
      check(c, "generate (differing before a near tie)", mismatches(wantBefore, gotBefore), 0);
      assertArrayEquals(wantBefore, gotBefore, c + " greedy tokens before the first near tie");
      if (before < got.length) {
        info(c, "generate: first near tie at token", before);
        int g = all[prompt.length + before];
        assertTrue(
            g == tie[1] || g == tie[2],
            c
                + ": token "
                + before
                + " is "
                + g
                + ", not one of the tied "
                + tie[1]
                + ", "
                + tie[2]);
      }
    }
  }

  /**
   * The first generation step (0 .. steps - 1; steps when none) whose top two CPU logits are within
   * twice the largest |engine - CPU| logit difference at that step, with those two tokens. Row from
   * + i of the [rows, v] logits predicts step i's token.
   */
  static int[] firstNearTie(float[] eng, float[] cpu, int v, int from, int steps) {
    for (int i = 0; i < steps; i++) {
      int o = (from + i) * v;
      double margin = 0;
      for (int t = 0; t < v; t++)
        margin = Math.max(margin, 2.0 * Math.abs(eng[o + t] - cpu[o + t]));
      int a = 0, b = -1;
      for (int t = 1; t < v; t++) {
        if (cpu[o + t] > cpu[o + a]) {
          b = a;
          a = t;
        } else if (b < 0 || cpu[o + t] > cpu[o + b]) {
          b = t;
        }
      }
      if (cpu[o + a] - cpu[o + b] <= margin) return new int[] {i, a, b};
    }
    return new int[] {steps, -1, -1};
  }

  static double mismatches(int[] a, int[] b) {
    int n = 0;
    for (int i = 0; i < Math.min(a.length, b.length); i++) if (a[i] != b[i]) n++;
    return n + Math.abs(a.length - b.length);
  }

  @ParameterizedTest
  @ValueSource(strings = {"tiny", "tiny-sliding", "hd128"})
  void mergedAdapterLogits(String c) throws Exception {
    try (Ref r = ref(c);
        MistralModel m = load(c)) {
      m.attachAdapter(ROOT.resolve(c).resolve("adapter_trained"));
      m.mergeAdapter();
      int v = m.config().vocabSize();
      check(
          c,
          "merged.logits",
          maskedErr(m.logits(r.batch()), r.d("merged.logits"), r.batch().attentionMask(), v),
          tol(1e-5, 2e-2));
    }
  }

  @ParameterizedTest
  @ValueSource(strings = {"tiny", "hd128"})
  void savedAdapterHasPeftLayoutAndRoundTrips(String c, @TempDir Path tmp) throws Exception {
    try (Ref r = ref(c);
        MistralModel m = load(c)) {
      m.attachAdapter(ROOT.resolve(c).resolve("adapter_init"));
      Path out = tmp.resolve("adapter");
      m.saveAdapter(out);
      assertTrue(Files.isRegularFile(out.resolve("adapter_config.json")));
      try (SafetensorsFile ours = SafetensorsFile.open(out.resolve("adapter_model.safetensors"));
          SafetensorsFile peft =
              SafetensorsFile.open(
                  ROOT.resolve(c).resolve("adapter_init/adapter_model.safetensors"))) {
        assertEquals(new java.util.TreeSet<>(peft.names()), new java.util.TreeSet<>(ours.names()));
        for (String k : peft.names()) {
          assertArrayEquals(peft.tensor(k).shape(), ours.tensor(k).shape(), k);
        }
      }
      ObjectMapper om = new ObjectMapper();
      JsonNode a = om.readTree(out.resolve("adapter_config.json").toFile());
      JsonNode b =
          om.readTree(ROOT.resolve(c).resolve("adapter_init/adapter_config.json").toFile());
      for (String key :
          List.of(
              "r",
              "lora_alpha",
              "peft_type",
              "task_type",
              "use_rslora",
              "bias",
              "lora_dropout",
              "fan_in_fan_out",
              "use_dora")) {
        assertEquals(b.get(key).asText(), a.get(key).asText(), key);
      }
      assertEquals(
          new java.util.TreeSet<>(om.convertValue(b.get("target_modules"), List.class)),
          new java.util.TreeSet<>(om.convertValue(a.get("target_modules"), List.class)));
      // Our saved adapter reproduces PEFT's logits when loaded back.
      try (MistralModel m2 = load(c)) {
        m2.attachAdapter(out);
        check(
            c,
            "saved adapter reloaded logits",
            maskedErr(
                m2.logits(r.batch()),
                r.d("lora.logits"),
                r.batch().attentionMask(),
                m2.config().vocabSize()),
            tol(1e-5, 2e-2));
      }
    }
  }
}
