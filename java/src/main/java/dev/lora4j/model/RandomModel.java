package dev.lora4j.model;

import dev.lora4j.Lora4jException;
import dev.lora4j.MistralModel;
import dev.lora4j.safetensors.DType;
import dev.lora4j.safetensors.SafetensorsWriter;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.Map;
import java.util.SplittableRandom;

/**
 * A Mistral model folder with random bf16 weights: projections normal(0, std), the embedding and
 * the LM head normal(0, embeddingStd), norm weights 1. For tests, benchmarks and the small model the repository ships.
 */
public final class RandomModel {
  private RandomModel() {}

  public static void write(
      MistralConfig c, Path dir, long seed, double std, double embeddingStd, Path tokenizerDir) {
    try {
      Files.createDirectories(dir);
      SafetensorsWriter w = new SafetensorsWriter();
      SplittableRandom rng = new SplittableRandom(seed);
      for (Map.Entry<String, long[]> e : MistralModel.expectedWeights(c).entrySet()) {
        long[] shape = e.getValue();
        long n = 1;
        for (long s : shape) n *= s;
        float[] v = new float[Math.toIntExact(n)];
        boolean norm = shape.length == 1;
        boolean vocab = e.getKey().equals("lm_head.weight") || e.getKey().equals("model.embed_tokens.weight");
        double sd = vocab ? embeddingStd : std;
        for (int i = 0; i < v.length; i++) v[i] = norm ? 1f : (float) (gaussian(rng) * sd);
        w.addFloats(e.getKey(), DType.BF16, shape, v);
      }
      w.write(dir.resolve("model.safetensors"));
      Files.writeString(dir.resolve("config.json"), c.toJson());
      if (tokenizerDir != null) {
        for (String f : new String[] {"tokenizer.json", "tokenizer_config.json"}) {
          Path src = tokenizerDir.resolve(f);
          if (!Files.isRegularFile(src)) {
            throw new Lora4jException("tokenizer folder " + tokenizerDir + " has no " + f);
          }
          Files.copy(src, dir.resolve(f), StandardCopyOption.REPLACE_EXISTING);
        }
      }
    } catch (IOException e) {
      throw new Lora4jException("cannot write model folder " + dir + ": " + e, e);
    }
  }

  static double gaussian(SplittableRandom r) {
    double u1 = r.nextDouble(), u2 = r.nextDouble();
    return Math.sqrt(-2 * Math.log(1 - u1)) * Math.cos(2 * Math.PI * u2);
  }
}
