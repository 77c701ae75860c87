package dev.lora4j.model;

import static org.junit.jupiter.api.Assertions.*;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.lora4j.Fixtures;
import dev.lora4j.Lora4jException;
import dev.lora4j.gguf.GgufExport;
import dev.lora4j.model.peft.LoraAdapter;
import dev.lora4j.model.peft.LoraTarget;
import dev.lora4j.safetensors.DType;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.util.EnumSet;
import java.util.HexFormat;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** What `lora4j merge` refuses, and what it carries over, beside the folder it writes. */
class MergedExportTest {
  static final Path MODEL = Path.of("../examples/models/tiny-mistral");

  /** r 4, alpha 8 on every target, every A and B value the one given. */
  static LoraAdapter adapter(float value) {
    MistralConfig cfg = MistralConfig.load(MODEL.resolve("config.json"));
    LoraAdapter a = LoraAdapter.initNew(cfg, 4, 8, EnumSet.allOf(LoraTarget.class), false, 5);
    for (LoraAdapter.Weight w : a.weights().values()) java.util.Arrays.fill(w.values(), value);
    return a;
  }

  @Test
  void aMergedValueItsDtypeCannotHoldIsRefused(@TempDir Path tmp) {
    Path f = tmp.resolve("x.safetensors");
    // F16: below 65520 rounds to 65504; 65520 (halfway, ties to even) and beyond to infinity
    MergedExport.checkFits(new float[] {65519.99f, -65519.99f}, DType.F16, "w", f);
    for (float bad : new float[] {65520f, -70000f, Float.NaN}) {
      Lora4jException e =
          assertThrows(
              Lora4jException.class,
              () -> MergedExport.checkFits(new float[] {1, bad}, DType.F16, "w", f));
      assertTrue(
          e.getMessage().contains("tensor w") && e.getMessage().contains("element 1"),
          e.getMessage());
    }
    // BF16: 0x7F7F7FFF rounds to the largest bf16 (0x7F7F), 0x7F7F8000 to infinity
    MergedExport.checkFits(new float[] {Float.intBitsToFloat(0x7F7F7FFF)}, DType.BF16, "w", f);
    assertThrows(
        Lora4jException.class,
        () ->
            MergedExport.checkFits(
                new float[] {Float.intBitsToFloat(0x7F7F8000)}, DType.BF16, "w", f));
    MergedExport.checkFits(new float[] {Float.MAX_VALUE}, DType.F32, "w", f);
    assertThrows(
        Lora4jException.class,
        () -> MergedExport.checkFits(new float[] {Float.POSITIVE_INFINITY}, DType.F32, "w", f));
    // a whole merge whose update overflows the bf16 weights: refused naming a tensor, no folder
    Path out = tmp.resolve("merged");
    Lora4jException e =
        assertThrows(
            Lora4jException.class, () -> MergedExport.write(MODEL, adapter(1e19f), out, false));
    assertTrue(
        e.getMessage().contains("as merged") && e.getMessage().contains("model.layers."),
        e.getMessage());
    assertFalse(Files.exists(out));
  }

  @Test
  void aTargetedWeightMissingFromTheFolderIsRefused(@TempDir Path tmp) throws Exception {
    Path drop = tmp.resolve("drop");
    Fixtures.copyTinyMistral(drop, "model.layers.1.self_attn.q_proj.weight", null);
    Path out = tmp.resolve("merged");
    Lora4jException e =
        assertThrows(Lora4jException.class, () -> MergedExport.write(drop, adapter(0.01f), out));
    assertTrue(
        e.getMessage().contains("model.layers.1.self_attn.q_proj.weight")
            && e.getMessage().contains("missing"),
        e.getMessage());
    assertFalse(Files.exists(out));
  }

  @Test
  void aDamagedTrainingCheckpointIsNotMerged(@TempDir Path tmp) throws Exception {
    Path ck = tmp.resolve("checkpoint-4");
    adapter(0.01f).write(ck);
    Path weights = ck.resolve("adapter_model.safetensors");
    byte[] bytes = Files.readAllBytes(weights);
    String sha = HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(bytes));
    ObjectMapper json = new ObjectMapper();
    ObjectNode manifest = json.createObjectNode();
    manifest
        .putObject("files")
        .putObject("adapter_model.safetensors")
        .put("size", bytes.length)
        .put("sha256", sha);
    Files.writeString(ck.resolve("manifest.json"), json.writeValueAsString(manifest));
    // intact: merged
    MergedExport.write(MODEL, ck, tmp.resolve("ok"), false);
    assertTrue(Files.isRegularFile(tmp.resolve("ok/model.safetensors")));
    // one byte of the weights flipped: refused by merge and by the GGUF export alike
    bytes[bytes.length - 3] ^= 0x10;
    Files.write(weights, bytes);
    Path out = tmp.resolve("merged");
    Lora4jException e =
        assertThrows(Lora4jException.class, () -> MergedExport.write(MODEL, ck, out, false));
    assertTrue(
        e.getMessage().contains("damaged") && e.getMessage().contains("checksum"), e.getMessage());
    assertFalse(Files.exists(out));
    Path gguf = tmp.resolve("m.gguf");
    e =
        assertThrows(
            Lora4jException.class,
            () -> GgufExport.writeModel(MODEL, ck, gguf, GgufExport.Type.F16, false));
    assertTrue(e.getMessage().contains("damaged"), e.getMessage());
    assertFalse(Files.exists(gguf));
  }

  @Test
  void aChatTemplateInItsOwnFileIsCarriedOver(@TempDir Path tmp) throws Exception {
    // transformers 4.43 and later save the template as chat_template.jinja
    Path jinja = tmp.resolve("jinja");
    Fixtures.copyTinyMistral(jinja, null, null);
    ObjectMapper json = new ObjectMapper();
    ObjectNode tc =
        (ObjectNode) json.readTree(Files.readString(jinja.resolve("tokenizer_config.json")));
    String template = tc.remove("chat_template").asText();
    Files.writeString(jinja.resolve("tokenizer_config.json"), json.writeValueAsString(tc));
    Files.writeString(jinja.resolve("chat_template.jinja"), template);
    Path out = tmp.resolve("merged");
    MergedExport.write(jinja, adapter(0.01f), out);
    assertEquals(template, Files.readString(out.resolve("chat_template.jinja")));
  }
}
