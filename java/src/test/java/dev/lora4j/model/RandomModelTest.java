package dev.lora4j.model;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.lora4j.Batch;
import dev.lora4j.Device;
import dev.lora4j.Fixtures;
import dev.lora4j.MistralModel;
import dev.lora4j.cli.Main;
import dev.lora4j.safetensors.SafetensorsFile;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.util.HexFormat;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class RandomModelTest {
  @TempDir Path tmp;

  /** One layer whose MLP weights (256 x 4608) and vocabulary tensors (5000 x 256) span 2 chunks. */
  static final String MULTI_CHUNK =
      "{\"model_type\":\"mistral\",\"vocab_size\":5000,\"hidden_size\":256,"
          + "\"intermediate_size\":4608,\"num_hidden_layers\":1,\"num_attention_heads\":4,"
          + "\"num_key_value_heads\":2,\"max_position_embeddings\":256,\"rms_norm_eps\":1e-5,"
          + "\"rope_theta\":10000.0,\"sliding_window\":null,\"tie_word_embeddings\":false}";

  static MistralConfig config(String json) {
    return MistralConfig.parse(json, "test config");
  }

  static String sha256(Path f) throws Exception {
    return HexFormat.of()
        .formatHex(MessageDigest.getInstance("SHA-256").digest(Files.readAllBytes(f)));
  }

  @Test
  void sameFileForAnyThreadCount() throws Exception {
    MistralConfig c = config(MULTI_CHUNK);
    assertTrue(
        5000L * 256 > RandomModel.CHUNK_ELEMENTS && 4608L * 256 > RandomModel.CHUNK_ELEMENTS);
    Path one = tmp.resolve("t1");
    RandomModel.write(c, one, 5, 0.02, 0.02, null, 1);
    byte[] want = Files.readAllBytes(one.resolve("model.safetensors"));
    for (int threads : new int[] {2, 3, 8}) {
      Path d = tmp.resolve("t" + threads);
      RandomModel.write(c, d, 5, 0.02, 0.02, null, threads);
      assertArrayEquals(
          want, Files.readAllBytes(d.resolve("model.safetensors")), threads + " threads");
    }
    Path other = tmp.resolve("seed6");
    RandomModel.write(c, other, 6, 0.02, 0.02, null, 2);
    assertFalse(
        java.util.Arrays.equals(want, Files.readAllBytes(other.resolve("model.safetensors"))));
  }

  @Test
  void fileIsPinnedForASeed() throws Exception {
    // The definition of the output (SplitMix64, ziggurat, seeds from tensor names, chunk size,
    // rounding) must not drift: the same seed gives this file on every machine and JVM.
    Path d = tmp.resolve("m");
    RandomModel.write(MistralConfig.load(Fixtures.hf("tiny", "model")), d, 0, 0.02, 0.5, null, 2);
    assertEquals(
        "09f94daaf62b1d25a9ccddf26cbe7a7761e4d2fc6ccbb578d0358e13f2e36905",
        sha256(d.resolve("model.safetensors")));
  }

  @Test
  void valuesHaveTheRequestedDistribution() throws Exception {
    Path d = tmp.resolve("m");
    RandomModel.write(config(MULTI_CHUNK), d, 11, 0.02, 0.5, null, 2);
    try (SafetensorsFile f = SafetensorsFile.open(d.resolve("model.safetensors"))) {
      checkNormal(f.readFloat("model.layers.0.mlp.down_proj.weight"), 0.02);
      checkNormal(f.readFloat("model.layers.0.self_attn.k_proj.weight"), 0.02);
      checkNormal(f.readFloat("model.embed_tokens.weight"), 0.5);
      checkNormal(f.readFloat("lm_head.weight"), 0.5);
      for (String norm :
          new String[] {
            "model.norm.weight",
            "model.layers.0.input_layernorm.weight",
            "model.layers.0.post_attention_layernorm.weight"
          }) {
        for (float v : f.readFloat(norm)) assertEquals(1f, v, norm);
      }
      // tensors and chunks draw from different streams
      float[] up = f.readFloat("model.layers.0.mlp.up_proj.weight");
      float[] gate = f.readFloat("model.layers.0.mlp.gate_proj.weight");
      assertFalse(java.util.Arrays.equals(up, gate));
      int chunk = RandomModel.CHUNK_ELEMENTS;
      assertFalse(
          java.util.Arrays.equals(
              java.util.Arrays.copyOfRange(up, 0, 1000),
              java.util.Arrays.copyOfRange(up, chunk, chunk + 1000)));
    }
  }

  /**
   * Mean 0 and standard deviation sd within 5 standard errors; 68.3% and 95.4% within 1 and 2 sd.
   */
  static void checkNormal(float[] v, double sd) {
    int n = v.length;
    double sum = 0;
    double sum2 = 0;
    long in1 = 0;
    long in2 = 0;
    for (float x : v) {
      sum += x;
      sum2 += (double) x * x;
      if (Math.abs(x) < sd) in1++;
      if (Math.abs(x) < 2 * sd) in2++;
    }
    double mean = sum / n;
    double std = Math.sqrt(sum2 / n - mean * mean);
    assertEquals(0, mean, 5 * sd / Math.sqrt(n), "mean");
    // bf16 rounding adds a relative variance below 2^-18: far under the sampling error
    assertEquals(sd, std, 5 * sd / Math.sqrt(2.0 * n), "standard deviation");
    assertEquals(
        0.6827, (double) in1 / n, 5 * Math.sqrt(0.6827 * 0.3173 / n) + 2e-3, "within 1 sd");
    assertEquals(
        0.9545, (double) in2 / n, 5 * Math.sqrt(0.9545 * 0.0455 / n) + 1e-3, "within 2 sd");
  }

  @Test
  void tensorsDependOnlyOnTheirNames() throws Exception {
    MistralConfig one = config(MULTI_CHUNK);
    MistralConfig two =
        config(MULTI_CHUNK.replace("\"num_hidden_layers\":1", "\"num_hidden_layers\":2"));
    RandomModel.write(one, tmp.resolve("a"), 3, 0.02, 0.02, null, 2);
    RandomModel.write(two, tmp.resolve("b"), 3, 0.02, 0.02, null, 2);
    try (SafetensorsFile a = SafetensorsFile.open(tmp.resolve("a/model.safetensors"));
        SafetensorsFile b = SafetensorsFile.open(tmp.resolve("b/model.safetensors"))) {
      for (String name : a.names()) assertArrayEquals(a.readFloat(name), b.readFloat(name), name);
      assertFalse(
          java.util.Arrays.equals(
              b.readFloat("model.layers.0.self_attn.q_proj.weight"),
              b.readFloat("model.layers.1.self_attn.q_proj.weight")));
    }
  }

  @Test
  void writtenFolderLoadsAndPredictsUniformly() {
    Path d = tmp.resolve("m");
    MistralConfig c = MistralConfig.load(Fixtures.hf("tiny", "model"));
    RandomModel.write(c, d, 1, 0.02, 0.02, null, 2);
    SplittableRandom r = new SplittableRandom(1);
    int[][] rows = new int[2][24];
    for (int[] row : rows) for (int t = 0; t < row.length; t++) row[t] = r.nextInt(c.vocabSize());
    try (MistralModel m = MistralModel.load(d, Device.cpu())) {
      assertEquals(c.hiddenSize(), m.config().hiddenSize());
      double loss = m.evalLoss(Batch.of(rows));
      // logits have standard deviation about 0.02 * sqrt(hidden) = 0.16, so the loss is close to
      // that of a uniform prediction, ln(vocab) = 6.24
      assertEquals(Math.log(c.vocabSize()), loss, 0.1, "loss of random weights");
    }
  }

  @Test
  void commandLineWritesTheSameFolder() throws Exception {
    Path cfg = Fixtures.hf("tiny", "model").resolve("config.json");
    Path a = tmp.resolve("cli");
    StringWriter out = new StringWriter();
    StringWriter err = new StringWriter();
    int code =
        Main.run(
            new String[] {
              "init-model",
              "--config",
              cfg.toString(),
              "--output",
              a.toString(),
              "--seed",
              "9",
              "--std",
              "0.03",
              "--embedding-std",
              "0.4",
              "--threads",
              "3"
            },
            new PrintWriter(out, true),
            new PrintWriter(err, true));
    assertEquals(0, code, err.toString());
    Path b = tmp.resolve("api");
    RandomModel.write(MistralConfig.load(cfg), b, 9, 0.03, 0.4, null, 1);
    assertEquals(sha256(b.resolve("model.safetensors")), sha256(a.resolve("model.safetensors")));
    int bad =
        Main.run(
            new String[] {
              "init-model", "--config", cfg.toString(), "--output", a.toString(), "--threads", "0"
            },
            new PrintWriter(out, true),
            new PrintWriter(err, true));
    assertEquals(2, bad);
    assertTrue(err.toString().contains("--threads must be at least 1"), err.toString());
  }
}
