package dev.lora4j.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.lora4j.MistralModel;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The engine's positions follow --max-seq-length (train, eval) unless --max-positions is given. */
class ModelOptionsTest {
  @TempDir Path dir;

  private ModelOptions options(int maxPositionEmbeddings, int maxPositions) throws Exception {
    // the shipped tiny model's config with its max_position_embeddings replaced
    String tiny =
        Files.readString(Path.of("..", "examples", "models", "tiny-mistral", "config.json"));
    Files.writeString(
        dir.resolve("config.json"),
        tiny.replaceAll(
            "\"max_position_embeddings\": *[0-9]+",
            "\"max_position_embeddings\": " + maxPositionEmbeddings));
    ModelOptions o = new ModelOptions();
    o.model = dir;
    o.maxPositions = maxPositions;
    return o;
  }

  @Test
  void rowsUpToTheDefaultKeepTheDefaultEngine() throws Exception {
    assertEquals(0, options(32768, 0).positions(2048));
    assertEquals(0, options(32768, 0).positions(4096));
  }

  @Test
  void longerRowsSizeTheEngineForThem() throws Exception {
    // the 1 x 8192 and 1 x 32768 settings were cut to 4096 tokens before this
    assertEquals(8192, options(32768, 0).positions(8192));
    assertEquals(32768, options(32768, 0).positions(32768));
  }

  @Test
  void neverBeyondTheModelsPositions() throws Exception {
    assertEquals(32768, options(32768, 0).positions(65536));
    assertEquals(2048, options(2048, 0).positions(8192));
  }

  @Test
  void offloadWithoutRecomputeIsRefused() throws Exception {
    ModelOptions o = options(32768, 0);
    o.recompute = "none";
    o.offloadCheckpoints = true;
    IllegalArgumentException e =
        assertThrows(IllegalArgumentException.class, () -> o.load("cpu", 64));
    assertTrue(e.getMessage().contains("--offload-checkpoints needs --recompute"), e.getMessage());
  }

  @Test
  void offloadOnTheCpuLoadsAndSaysItHasNoEffect() throws Exception {
    ModelOptions o = options(32768, 0);
    o.recompute = "attention";
    o.offloadCheckpoints = true;
    o.model = Path.of("..", "examples", "models", "tiny-mistral");
    java.io.PrintStream err = System.err;
    java.io.ByteArrayOutputStream buf = new java.io.ByteArrayOutputStream();
    System.setErr(new java.io.PrintStream(buf, true, java.nio.charset.StandardCharsets.UTF_8));
    try (MistralModel m = o.load("cpu", 64)) {
      assertTrue(m != null);
    } finally {
      System.setErr(err);
    }
    assertTrue(
        buf.toString(java.nio.charset.StandardCharsets.UTF_8)
            .contains("--offload-checkpoints has no effect on the CPU"),
        buf.toString(java.nio.charset.StandardCharsets.UTF_8));
  }

  @Test
  void recomputeModes() {
    assertEquals(MistralModel.Recompute.NONE, ModelOptions.recomputeOf("none"));
    assertEquals(MistralModel.Recompute.LAYER, ModelOptions.recomputeOf("Layer"));
    assertEquals(MistralModel.Recompute.SELECTIVE, ModelOptions.recomputeOf("selective"));
    assertEquals(MistralModel.Recompute.ATTENTION, ModelOptions.recomputeOf("Attention"));
    IllegalArgumentException e =
        assertThrows(IllegalArgumentException.class, () -> ModelOptions.recomputeOf("full"));
    assertTrue(e.getMessage().contains("'full'"), e.getMessage());
  }

  @Test
  void maxPositionsWins() throws Exception {
    assertEquals(1000, options(32768, 1000).positions(8192));
    assertEquals(16384, options(32768, 16384).positions(2048));
  }
}
