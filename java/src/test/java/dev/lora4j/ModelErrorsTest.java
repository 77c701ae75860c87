package dev.lora4j;

import static org.junit.jupiter.api.Assertions.*;

import dev.lora4j.nativ.NativeException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Bad model folders, bad adapters and misuse of a model: each a clear exception, JVM alive. */
class ModelErrorsTest {
  static final Path REF = Path.of("src/test/resources/hf-reference");

  @Test
  void wrongModelFolders(@TempDir Path tmp) throws Exception {
    var e1 =
        assertThrows(
            Lora4jException.class, () -> MistralModel.load(tmp.resolve("nope"), Device.cpu()));
    assertTrue(e1.getMessage().contains("nope"), e1.getMessage());
    var e2 = assertThrows(Lora4jException.class, () -> MistralModel.load(tmp, Device.cpu()));
    assertTrue(e2.getMessage().contains("config.json"), e2.getMessage());
    // A folder whose config does not match its weights.
    Path m = tmp.resolve("m");
    Files.createDirectories(m);
    for (Path p : Files.list(REF.resolve("tiny/model")).toList()) {
      Files.copy(p, m.resolve(p.getFileName()), StandardCopyOption.REPLACE_EXISTING);
    }
    Files.writeString(
        m.resolve("config.json"),
        Files.readString(m.resolve("config.json"))
            .replace("\"intermediate_size\": 176", "\"intermediate_size\": 180"));
    var e3 = assertThrows(Lora4jException.class, () -> MistralModel.load(m, Device.cpu()));
    assertTrue(
        e3.getMessage().contains("mlp.") && e3.getMessage().contains("shape"), e3.getMessage());
    // The JVM goes on: a good model still loads.
    try (MistralModel ok = MistralModel.load(REF.resolve("tiny/model"), Device.cpu())) {
      assertEquals(512, ok.config().vocabSize());
    }
  }

  @Test
  void adapterShapesNotMatchingTheModel() {
    try (MistralModel m = MistralModel.load(REF.resolve("hd128/model"), Device.cpu())) {
      var e =
          assertThrows(
              Lora4jException.class, () -> m.attachAdapter(REF.resolve("tiny/adapter_init")));
      assertTrue(e.getMessage().contains("adapter"), e.getMessage());
      assertNull(m.adapterConfig());
    }
  }

  @Test
  void badBatchesAndUseAfterClose() {
    MistralModel m = MistralModel.load(REF.resolve("tiny/model"), Device.cpu());
    var e = assertThrows(NativeException.class, () -> m.evalLoss(Batch.of(new int[] {1, 2, 9999})));
    assertTrue(
        e.getMessage().contains("input_ids") && e.getMessage().contains("9999"), e.getMessage());
    assertThrows(
        IllegalStateException.class,
        () -> m.trainStep(Batch.of(new int[] {1, 2, 3}), AdamWConfig.defaults()));
    var w = assertThrows(NativeException.class, () -> m.weight("model.nope.weight"));
    assertTrue(w.getMessage().contains("model.nope.weight"), w.getMessage());
    m.close();
    m.close();
    assertThrows(IllegalStateException.class, () -> m.evalLoss(Batch.of(new int[] {1, 2, 3})));
  }

  @Test
  void generationRefusesOverlongAndSanitizesControlCharacters() {
    assertEquals("a\tb\nc", Generator.sanitize("a\tb\u0000\u0007\nc\u001b", 100));
    assertThrows(IllegalArgumentException.class, () -> Generator.sanitize("x".repeat(11), 10));
  }
}
