package dev.lora4j.bench;

import dev.lora4j.Batch;
import dev.lora4j.model.MistralConfig;
import dev.lora4j.model.RandomModel;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.SplittableRandom;

/** Random-weight Mistral folders and random batches for the benchmarks. */
final class BenchModel {
  private BenchModel() {}

  /** A model folder with the given shape (written to a temporary folder). */
  static Path write(int hidden, int layers, int heads, int kvHeads, int intermediate, int vocab) {
    String json =
        "{\"model_type\":\"mistral\",\"vocab_size\":"
            + vocab
            + ",\"hidden_size\":"
            + hidden
            + ",\"intermediate_size\":"
            + intermediate
            + ",\"num_hidden_layers\":"
            + layers
            + ",\"num_attention_heads\":"
            + heads
            + ",\"num_key_value_heads\":"
            + kvHeads
            + ",\"max_position_embeddings\":4096,\"rms_norm_eps\":1e-5,\"rope_theta\":10000.0"
            + ",\"sliding_window\":null,\"tie_word_embeddings\":false}";
    try {
      Path dir = Files.createTempDirectory("lora4j-bench-model");
      RandomModel.write(MistralConfig.parse(json, "benchmark config"), dir, 1, 0.02, 0.02, null);
      return dir;
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  /** rows x seq random tokens, every position counted. */
  static Batch batch(int rows, int seq, int vocab, long seed) {
    SplittableRandom r = new SplittableRandom(seed);
    int[][] ids = new int[rows][seq];
    for (int[] row : ids) for (int t = 0; t < seq; t++) row[t] = 3 + r.nextInt(vocab - 3);
    return Batch.of(ids);
  }
}
