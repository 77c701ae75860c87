package dev.lora4j.model.nf4;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.lora4j.Lora4jException;
import dev.lora4j.Quantization;
import dev.lora4j.io.OutputFolder;
import dev.lora4j.model.Json;
import dev.lora4j.model.MistralConfig;
import dev.lora4j.model.ModelLayout;
import dev.lora4j.safetensors.Checkpoint;
import dev.lora4j.safetensors.DType;
import dev.lora4j.safetensors.SafetensorsFile;
import dev.lora4j.safetensors.SafetensorsWriter;
import dev.lora4j.safetensors.TensorInfo;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Writes a 16-bit Hugging Face model folder in bitsandbytes' 4-bit layout: every projection weight
 * of the decoder layers quantized to NF4 ({@link Nf4}) and stored as {@link Bnb4bit} describes,
 * every other tensor (embedding, norms, LM head) copied byte for byte, config.json given
 * bitsandbytes' {@code quantization_config}. The shards keep the input's file names; a sharded
 * input gets a new index. Such a folder loads in transformers with bitsandbytes and in lora4j
 * ({@code MistralModel.load}) in 4 bits.
 */
public final class Nf4Export {
  private Nf4Export() {}

  private static final ObjectMapper JSON = new ObjectMapper();
  private static final List<String> SIDE_FILES =
      List.of(
          "generation_config.json",
          "tokenizer.json",
          "tokenizer_config.json",
          "tokenizer.model",
          "special_tokens_map.json");

  /**
   * Quantizes modelDir's projections and writes the folder to outDir (apart from modelDir; a
   * non-empty outDir is refused unless overwrite; written under a temporary name and renamed).
   *
   * @param modelDir a 16-bit model folder
   * @param outDir the output folder
   * @param q the quantization (NF4)
   * @param overwrite replace a non-empty outDir
   */
  public static void write(Path modelDir, Path outDir, Quantization q, boolean overwrite) {
    if (!q.isNf4()) throw new IllegalArgumentException("Nf4Export writes NF4, got " + q);
    OutputFolder.checkApart(outDir, "output folder", Map.of("model folder", modelDir));
    Path cfgFile = modelDir.resolve("config.json");
    MistralConfig cfg = MistralConfig.load(cfgFile);
    if (Bnb4bit.readConfig(cfgFile) != null) {
      throw new Lora4jException(
          cfgFile + " already has a quantization_config: " + modelDir + " is quantized");
    }
    Map<String, ModelLayout.Weight> projections = new LinkedHashMap<>();
    for (ModelLayout.Weight w : ModelLayout.of(cfg).weights()) {
      if (w.projection() != null) projections.put(w.name(), w);
    }
    try (Checkpoint ckpt = Checkpoint.open(modelDir);
        OutputFolder staged = OutputFolder.stage(outDir, overwrite)) {
      Path dir = staged.path();
      Map<String, String> weightMap = new LinkedHashMap<>();
      long total = 0;
      String computeDtype = "bfloat16";
      for (SafetensorsFile shard : ckpt.shards()) {
        SafetensorsWriter w = new SafetensorsWriter();
        w.metadata(shard.metadata().isEmpty() ? Map.of("format", "pt") : shard.metadata());
        String file = shard.path().getFileName().toString();
        for (TensorInfo t : shard.tensors()) {
          ModelLayout.Weight pw = projections.get(t.name());
          if (pw == null) {
            w.add(t.name(), t.dtype(), t.shape(), shard.data(t.name()));
            continue;
          }
          if (!java.util.Arrays.equals(t.shape(), pw.shape())
              || !t.dtype().isFloatingPoint()
              || t.dtype() == DType.F64) {
            throw new Lora4jException(
                shard.path()
                    + ": tensor "
                    + t.name()
                    + " is "
                    + t.dtype()
                    + java.util.Arrays.toString(t.shape())
                    + ", expected a BF16, F16 or"
                    + " F32 weight of shape "
                    + java.util.Arrays.toString(pw.shape()));
          }
          if (t.dtype() == DType.F16) computeDtype = "float16";
          Nf4Tensor nf4 =
              Nf4.quantize(
                  shard.readFloat(t.name()), t.shape(), t.dtype(), q.blocksize(), q.doubleQuant());
          Bnb4bit.add(w, t.name(), nf4);
        }
        w.write(dir.resolve(file));
        try (SafetensorsFile written = SafetensorsFile.open(dir.resolve(file))) {
          for (TensorInfo t : written.tensors()) {
            weightMap.put(t.name(), file);
            total += t.byteLength();
          }
        }
      }
      if (ckpt.isSharded()) {
        ObjectNode index = JSON.createObjectNode();
        index.putObject("metadata").put("total_size", total);
        ObjectNode wm = index.putObject("weight_map");
        weightMap.keySet().stream().sorted().forEach(k -> wm.put(k, weightMap.get(k)));
        Files.writeString(
            dir.resolve(Checkpoint.INDEX_FILE), Json.pretty(index) + "\n", StandardCharsets.UTF_8);
      }
      ObjectNode config = (ObjectNode) JSON.readTree(Files.readAllBytes(cfgFile));
      config.set("quantization_config", Bnb4bit.configJson(q, computeDtype));
      Files.writeString(
          dir.resolve("config.json"), Json.pretty(config) + "\n", StandardCharsets.UTF_8);
      for (String f : SIDE_FILES) {
        Path src = modelDir.resolve(f);
        if (Files.isRegularFile(src)) {
          Files.copy(src, dir.resolve(f), StandardCopyOption.REPLACE_EXISTING);
        }
      }
      staged.commit();
    } catch (IOException e) {
      throw new Lora4jException("cannot write the 4-bit model to " + outDir + ": " + e, e);
    }
  }
}
