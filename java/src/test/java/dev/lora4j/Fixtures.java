package dev.lora4j;

import dev.lora4j.safetensors.SafetensorsFile;
import dev.lora4j.safetensors.SafetensorsWriter;
import dev.lora4j.safetensors.TensorInfo;
import java.io.IOException;
import java.net.URISyntaxException;
import java.net.URL;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

/** Paths of the test resources copied from the shared Hugging Face reference fixtures. */
public final class Fixtures {
  /** The three reference cases. */
  public static final List<String> CASES = List.of("tiny", "tiny-sliding", "hd128");

  private Fixtures() {}

  /**
   * @param relative path under src/test/resources
   * @return its absolute path on disk
   */
  public static Path resource(String relative) {
    URL url = Fixtures.class.getClassLoader().getResource(relative);
    if (url == null) throw new IllegalStateException("test resource missing: " + relative);
    try {
      return Path.of(url.toURI());
    } catch (URISyntaxException e) {
      throw new IllegalStateException(e);
    }
  }

  /** The small model the repository ships (examples/models/tiny-mistral), from java/. */
  public static final Path TINY_MISTRAL = Path.of("../examples/models/tiny-mistral");

  /**
   * Copies tiny-mistral's config, tokenizer and weights into dir, leaving out one tensor or making
   * element 17 of one a NaN.
   *
   * @param drop a tensor to leave out, or null
   * @param poison a tensor to give a NaN, or null
   */
  public static void copyTinyMistral(Path dir, String drop, String poison) throws IOException {
    Files.createDirectories(dir);
    for (String f : List.of("config.json", "tokenizer.json", "tokenizer_config.json")) {
      Files.copy(TINY_MISTRAL.resolve(f), dir.resolve(f));
    }
    SafetensorsWriter w = new SafetensorsWriter();
    try (SafetensorsFile st = SafetensorsFile.open(TINY_MISTRAL.resolve("model.safetensors"))) {
      for (TensorInfo t : st.tensors()) {
        if (t.name().equals(drop)) continue;
        float[] v = st.readFloat(t.name());
        if (t.name().equals(poison)) v[17] = Float.NaN;
        w.addFloats(t.name(), t.dtype(), t.shape(), v);
      }
    }
    w.write(dir.resolve("model.safetensors"));
  }

  /**
   * @param testCase tiny, tiny-sliding or hd128
   * @param sub model, adapter_init, adapter_trained, reference.safetensors, ...
   * @return the path
   */
  public static Path hf(String testCase, String sub) {
    return resource("hf-reference/" + testCase + "/" + sub);
  }
}
