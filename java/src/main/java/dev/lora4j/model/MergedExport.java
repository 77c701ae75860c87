package dev.lora4j.model;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.lora4j.Lora4jException;
import dev.lora4j.io.OutputFolder;
import dev.lora4j.model.nf4.Bnb4bit;
import dev.lora4j.model.nf4.Nf4Tensor;
import dev.lora4j.model.peft.LoraAdapter;
import dev.lora4j.model.peft.LoraTarget;
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
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.stream.IntStream;

/**
 * Writes a Hugging Face model folder with a LoRA adapter folded into the weights: every targeted
 * projection becomes {@code W + scale * B A}, computed in fp32 from the stored weight and rounded
 * once to the weight's dtype (as PEFT's merge_and_unload into a bf16 model); every other tensor is
 * copied byte for byte. The shards keep the input's file names and tensor placement, the index,
 * config.json and the tokenizer files are copied. Works shard by shard, so memory stays near one
 * shard.
 *
 * <p>A model saved by bitsandbytes in 4 bits ({@link Bnb4bit}) is written as a 16-bit model: every
 * NF4 projection is dequantized to the dtype it was quantized from (bf16, as bitsandbytes'
 * dequantize_4bit returns it) and the adapter merged there; the quantization tensors and
 * config.json's {@code quantization_config} are left out. Merging into 4-bit weights would round
 * the adapter away, so it is never done.
 */
public final class MergedExport {
  private MergedExport() {}

  private static final ObjectMapper JSON = new ObjectMapper();

  /** Copied beside the weights when present. */
  static final List<String> SIDE_FILES =
      List.of(
          "config.json",
          "generation_config.json",
          "tokenizer.json",
          "tokenizer_config.json",
          "chat_template.jinja",
          "tokenizer.model",
          "special_tokens_map.json",
          Checkpoint.INDEX_FILE);

  /**
   * Merges the adapter folder into the model folder's weights and writes the result to outDir. The
   * output must be apart from both inputs (not one of them, not inside, not containing one); an
   * existing non-empty outDir is refused unless overwrite, and then replaced as a whole. The folder
   * is written under a temporary name and renamed into place when complete.
   */
  public static void write(Path modelDir, Path adapterDir, Path outDir, boolean overwrite) {
    Map<String, Path> inputs = new LinkedHashMap<>();
    inputs.put("model folder", modelDir);
    inputs.put("adapter folder", adapterDir);
    OutputFolder.checkApart(outDir, "output folder", inputs);
    write(modelDir, LoraAdapter.read(adapterDir), outDir, overwrite);
  }

  /** {@link #write(Path, LoraAdapter, Path, boolean)} refusing a non-empty outDir. */
  public static void write(Path modelDir, LoraAdapter adapter, Path outDir) {
    write(modelDir, adapter, outDir, false);
  }

  /**
   * Writes the model folder's weights with the adapter folded in to outDir, which must be apart
   * from the model folder; a non-empty outDir is refused unless overwrite (then replaced as a
   * whole). Written under a temporary name and renamed into place when complete, so a failure
   * leaves nothing at outDir.
   */
  public static void write(Path modelDir, LoraAdapter adapter, Path outDir, boolean overwrite) {
    OutputFolder.checkApart(outDir, "output folder", Map.of("model folder", modelDir));
    MistralConfig cfg = MistralConfig.load(modelDir.resolve("config.json"));
    adapter.validate(cfg);
    double scale = adapter.config().scale();
    Map<String, ModelLayout.Weight> weights = new LinkedHashMap<>();
    for (ModelLayout.Weight w : ModelLayout.of(cfg).weights()) weights.put(w.name(), w);
    Path cfgFile = modelDir.resolve("config.json");
    try (Checkpoint ckpt = Checkpoint.open(modelDir);
        OutputFolder staged = OutputFolder.stage(outDir, overwrite)) {
      Path dir = staged.path();
      java.util.Set<String> quantized = new java.util.HashSet<>();
      for (ModelLayout.Weight mw : weights.values()) {
        if (mw.projection() != null && Bnb4bit.isQuantized(ckpt, mw.name())) {
          quantized.add(mw.name());
        }
      }
      boolean fromNf4 = !quantized.isEmpty() || Bnb4bit.readConfig(cfgFile) != null;
      // every weight the config implies, of its shape, before anything is written: a targeted
      // projection missing from the folder would otherwise lose its update without a word
      dev.lora4j.MistralModel.checkWeights(cfg, ckpt, quantized);
      Map<String, String> weightMap = new LinkedHashMap<>();
      long total = 0;
      for (SafetensorsFile shard : ckpt.shards()) {
        SafetensorsWriter w = new SafetensorsWriter();
        w.metadata(shard.metadata().isEmpty() ? Map.of("format", "pt") : shard.metadata());
        for (TensorInfo t : shard.tensors()) {
          if (isQuantCompanion(t.name(), quantized)) continue;
          ModelLayout.Weight mw = weights.get(t.name());
          LoraTarget target = mw == null ? null : mw.projection();
          if (quantized.contains(t.name())) {
            // dequantized to its 16-bit dtype, then merged there when targeted
            Nf4Tensor nf4 = Bnb4bit.read(ckpt, t.name(), mw.shape());
            float[] wv = nf4.dequantize();
            if (adapter.config().targets().contains(target)) {
              fold(wv, adapter.a(mw.layer(), target), adapter.b(mw.layer(), target), scale);
            }
            // (targeted or not: a 4-bit weight is written dequantized, every value checked)
            checkFits(wv, nf4.dtype(), t.name(), shard.path());
            w.add(t.name(), nf4.dtype(), mw.shape(), nf4.dtype().fromFloats(wv));
            continue;
          }
          if (target == null || !adapter.config().targets().contains(target)) {
            w.add(t.name(), t.dtype(), t.shape(), shard.data(t.name()));
            continue;
          }
          if (!Arrays.equals(t.shape(), mw.shape())) {
            throw new Lora4jException(
                shard.path()
                    + ": tensor "
                    + t.name()
                    + " has shape "
                    + Arrays.toString(t.shape())
                    + ", config.json implies "
                    + Arrays.toString(mw.shape()));
          }
          float[] wv = shard.readFloat(t.name());
          fold(wv, adapter.a(mw.layer(), target), adapter.b(mw.layer(), target), scale);
          checkFits(wv, t.dtype(), t.name(), shard.path());
          w.add(t.name(), t.dtype(), t.shape(), t.dtype().fromFloats(wv));
        }
        String file = shard.path().getFileName().toString();
        w.write(dir.resolve(file));
        if (fromNf4) {
          try (SafetensorsFile written = SafetensorsFile.open(dir.resolve(file))) {
            for (TensorInfo t : written.tensors()) {
              weightMap.put(t.name(), file);
              total += t.byteLength();
            }
          }
        }
      }
      for (String f : SIDE_FILES) {
        Path src = modelDir.resolve(f);
        if (!Files.isRegularFile(src)) continue;
        if (fromNf4 && f.equals("config.json")) {
          ObjectNode config = (ObjectNode) JSON.readTree(Files.readAllBytes(src));
          config.remove("quantization_config");
          Files.writeString(dir.resolve(f), Json.pretty(config) + "\n", StandardCharsets.UTF_8);
        } else if (fromNf4 && f.equals(Checkpoint.INDEX_FILE)) {
          ObjectNode index = JSON.createObjectNode();
          index.putObject("metadata").put("total_size", total);
          ObjectNode wm = index.putObject("weight_map");
          weightMap.keySet().stream().sorted().forEach(k -> wm.put(k, weightMap.get(k)));
          Files.writeString(dir.resolve(f), Json.pretty(index) + "\n", StandardCharsets.UTF_8);
        } else {
          Files.copy(src, dir.resolve(f), StandardCopyOption.REPLACE_EXISTING);
        }
      }
      staged.commit();
    } catch (IOException e) {
      throw new Lora4jException("cannot write the merged model to " + outDir + ": " + e, e);
    }
  }

  /** Whether name is one of the tensors bitsandbytes stores beside a quantized weight. */
  private static boolean isQuantCompanion(String name, java.util.Set<String> quantized) {
    for (String suffix : Bnb4bit.SUFFIXES) {
      if (name.endsWith(suffix)
          && quantized.contains(name.substring(0, name.length() - suffix.length()))) {
        return true;
      }
    }
    return false;
  }

  /**
   * Refuses a merged weight its dtype cannot hold: a value that is not finite, or one that rounds
   * to infinity in the dtype (65520 and beyond in F16, halfway past bf16's largest finite value and
   * beyond in BF16). Written as it is, such a folder would be refused by every loader (lora4j
   * included).
   */
  static void checkFits(float[] v, DType dtype, String name, Path file) {
    int i = dtype.firstUnheld(v);
    if (i >= 0) {
      throw new Lora4jException(
          file
              + ": tensor "
              + name
              + " would hold "
              + v[i]
              + " (element "
              + i
              + ") as merged, beyond what its dtype "
              + dtype.name()
              + " holds: the adapter's update is too large for these weights; nothing was"
              + " written");
    }
  }

  /**
   * Adds {@code scale * B A} to a weight {@code [out, in]} in place, in fp32 (B {@code [out, r]}, A
   * {@code [r, in]}); the caller rounds to the weight's dtype.
   *
   * @param w the weight, row-major
   * @param a lora_A
   * @param b lora_B
   * @param scale the LoRA scale
   */
  public static void fold(float[] w, LoraAdapter.Weight a, LoraAdapter.Weight b, double scale) {
    int out = b.rows(), in = a.cols(), r = a.rows();
    if ((long) out * in != w.length || b.cols() != r) {
      throw new IllegalArgumentException(
          "lora_A ["
              + r
              + ", "
              + in
              + "] and lora_B ["
              + b.rows()
              + ", "
              + b.cols()
              + "] do not fit a weight of "
              + w.length
              + " values");
    }
    float[] av = a.values(), bv = b.values();
    IntStream.range(0, out)
        .parallel()
        .forEach(
            i -> {
              for (int j = 0; j < in; j++) {
                float d = 0;
                for (int k = 0; k < r; k++) d += bv[i * r + k] * av[k * in + j];
                w[i * in + j] = (float) (w[i * in + j] + scale * d);
              }
            });
  }
}
