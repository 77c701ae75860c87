package dev.lora4j;

import java.net.URISyntaxException;
import java.net.URL;
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

  /**
   * @param testCase tiny, tiny-sliding or hd128
   * @param sub model, adapter_init, adapter_trained, reference.safetensors, ...
   * @return the path
   */
  public static Path hf(String testCase, String sub) {
    return resource("hf-reference/" + testCase + "/" + sub);
  }
}
