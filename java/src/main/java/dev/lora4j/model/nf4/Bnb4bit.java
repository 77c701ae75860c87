package dev.lora4j.model.nf4;

import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.lora4j.Quantization;
import dev.lora4j.io.JsonErrors;
import dev.lora4j.safetensors.Checkpoint;
import dev.lora4j.safetensors.DType;
import dev.lora4j.safetensors.SafetensorsException;
import dev.lora4j.safetensors.SafetensorsWriter;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Hugging Face checkpoints saved by bitsandbytes in 4 bits (transformers with {@code
 * BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4")}, the "-bnb-4bit" uploads).
 *
 * <p>config.json carries a {@code quantization_config} ({@code quant_method} "bitsandbytes", {@code
 * load_in_4bit} true, {@code bnb_4bit_quant_type} "nf4"). Each quantized linear weight {@code W} is
 * stored as the tensors
 *
 * <ul>
 *   <li>{@code W}: uint8 [(numel + 1) / 2, 1], two codes per byte, the earlier element high;
 *   <li>{@code W.absmax}: fp32 [blocks], or uint8 [blocks] when double-quantized;
 *   <li>{@code W.quant_map}: fp32 [16], the NF4 values;
 *   <li>{@code W.nested_absmax}: fp32 [ceil(blocks / nested_blocksize)] and {@code
 *       W.nested_quant_map}: fp32 [256] (double-quantized only);
 *   <li>{@code W.quant_state.bitsandbytes__nf4}: uint8, the UTF-8 JSON of {@code quant_type},
 *       {@code blocksize}, {@code dtype}, {@code shape} and, double-quantized, {@code
 *       nested_blocksize}, {@code nested_dtype}, {@code nested_offset}.
 * </ul>
 *
 * Every one is validated (dtype, shape, size, finite values, a code table that is NF4's); a bad one
 * is a {@link SafetensorsException} naming the file and the tensor.
 */
public final class Bnb4bit {
  private Bnb4bit() {}

  /** Suffix of the quant-state tensor of an NF4 weight. */
  public static final String QUANT_STATE = ".quant_state.bitsandbytes__nf4";

  /** Suffix of the quant-state tensor of an FP4 weight (not read: refused by name). */
  public static final String QUANT_STATE_FP4 = ".quant_state.bitsandbytes__fp4";

  /** The suffixes of every tensor bitsandbytes adds beside a quantized weight. */
  public static final List<String> SUFFIXES =
      List.of(".absmax", ".quant_map", ".nested_absmax", ".nested_quant_map", QUANT_STATE);

  private static final ObjectMapper JSON =
      new ObjectMapper()
          .enable(JsonParser.Feature.STRICT_DUPLICATE_DETECTION)
          .enable(DeserializationFeature.FAIL_ON_TRAILING_TOKENS);

  /**
   * A config.json's {@code quantization_config}.
   *
   * @param doubleQuant {@code bnb_4bit_use_double_quant}
   * @param computeDtype {@code bnb_4bit_compute_dtype} (informative: lora4j computes in the
   *     backend's types)
   */
  public record Config(boolean doubleQuant, String computeDtype) {}

  /**
   * Reads config.json's {@code quantization_config}.
   *
   * @param configJson the model's config.json
   * @return the settings, or null when the model is not quantized
   * @throws SafetensorsException for a quantization lora4j does not load (not bitsandbytes, 8-bit,
   *     FP4, a storage type other than uint8), naming the file and the key
   */
  public static Config readConfig(Path configJson) {
    JsonNode root;
    try {
      root = JSON.readTree(Files.readAllBytes(configJson));
    } catch (IOException e) {
      throw new SafetensorsException(configJson + ": cannot read: " + e, e);
    }
    JsonNode q = root == null ? null : root.get("quantization_config");
    if (q == null || q.isNull()) return null;
    String where = configJson + ": quantization_config";
    if (!q.isObject()) throw new SafetensorsException(where + " is not an object");
    String method = text(q, "quant_method", where);
    if (!"bitsandbytes".equals(method)) {
      throw new SafetensorsException(
          where
              + ".quant_method is '"
              + method
              + "'; lora4j loads 4-bit bitsandbytes (NF4) checkpoints only");
    }
    if (bool(q, "load_in_8bit", where)) {
      throw new SafetensorsException(
          where
              + ".load_in_8bit is true: 8-bit (LLM.int8) checkpoints are not supported; lora4j"
              + " loads NF4 4-bit checkpoints");
    }
    if (!bool(q, "load_in_4bit", where)) {
      throw new SafetensorsException(where + ".load_in_4bit is not true");
    }
    String type = q.has("bnb_4bit_quant_type") ? text(q, "bnb_4bit_quant_type", where) : "fp4";
    if (!"nf4".equals(type)) {
      throw new SafetensorsException(
          where + ".bnb_4bit_quant_type is '" + type + "': only nf4 is supported");
    }
    if (q.has("bnb_4bit_quant_storage")
        && !"uint8".equals(text(q, "bnb_4bit_quant_storage", where))) {
      throw new SafetensorsException(
          where
              + ".bnb_4bit_quant_storage is '"
              + q.get("bnb_4bit_quant_storage").asText()
              + "': only uint8 storage is supported");
    }
    String compute =
        q.has("bnb_4bit_compute_dtype") && !q.get("bnb_4bit_compute_dtype").isNull()
            ? q.get("bnb_4bit_compute_dtype").asText()
            : "float32";
    return new Config(bool(q, "bnb_4bit_use_double_quant", where), compute);
  }

  private static String text(JsonNode q, String key, String where) {
    JsonNode n = q.get(key);
    if (n == null || !n.isTextual()) {
      throw new SafetensorsException(where + "." + key + " is missing or not a string");
    }
    return n.textValue();
  }

  private static boolean bool(JsonNode q, String key, String where) {
    boolean a = flag(q, key, where), b = flag(q, "_" + key, where);
    return a || b;
  }

  private static boolean flag(JsonNode q, String key, String where) {
    JsonNode n = q.get(key);
    if (n == null || n.isNull()) return false;
    if (!n.isBoolean()) throw new SafetensorsException(where + "." + key + " is not a boolean");
    return n.booleanValue();
  }

  /**
   * @param ckpt the checkpoint
   * @param weight a weight name ({@code ...q_proj.weight})
   * @return whether bitsandbytes stored it in NF4 (its quant-state tensor is present)
   */
  public static boolean isQuantized(Checkpoint ckpt, String weight) {
    return ckpt.contains(weight + QUANT_STATE);
  }

  /**
   * Reads and validates one NF4 weight.
   *
   * @param ckpt the checkpoint
   * @param weight the weight's name
   * @param shape the shape config.json implies, [out, in]
   * @return the weight
   * @throws SafetensorsException naming the file and the tensor that is missing or wrong
   */
  public static Nf4Tensor read(Checkpoint ckpt, String weight, long[] shape) {
    long numel = 1;
    for (long d : shape) numel *= d;
    // the quant state first: it says what the other tensors must be
    String qsName = weight + QUANT_STATE;
    ByteBuffer qsBytes = tensor(ckpt, qsName, DType.U8, null);
    byte[] raw = new byte[qsBytes.remaining()];
    qsBytes.get(raw);
    String at = ckpt.fileOf(qsName).path() + ": tensor " + qsName;
    JsonNode qs;
    try {
      qs = JSON.readTree(new String(raw, StandardCharsets.UTF_8));
    } catch (JsonProcessingException e) {
      throw new SafetensorsException(at + " is not a JSON object: " + JsonErrors.describe(e), e);
    }
    if (qs == null || !qs.isObject()) throw new SafetensorsException(at + " is not a JSON object");
    String type = stateText(qs, "quant_type", at);
    if (!"nf4".equals(type)) {
      throw new SafetensorsException(at + ": quant_type is '" + type + "', expected nf4");
    }
    int blocksize = stateInt(qs, "blocksize", at);
    if (!Nf4.BNB_BLOCKSIZES.contains(blocksize)) {
      throw new SafetensorsException(
          at + ": blocksize " + blocksize + " is not one bitsandbytes uses " + Nf4.BNB_BLOCKSIZES);
    }
    DType dtype =
        switch (stateText(qs, "dtype", at)) {
          case "bfloat16" -> DType.BF16;
          case "float16" -> DType.F16;
          case "float32" -> DType.F32;
          default ->
              throw new SafetensorsException(
                  at
                      + ": dtype '"
                      + qs.get("dtype").asText()
                      + "' is not bfloat16, float16 or float32");
        };
    JsonNode sh = qs.get("shape");
    long[] stated = null;
    if (sh != null && sh.isArray()) {
      stated = new long[sh.size()];
      for (int i = 0; i < sh.size(); i++)
        stated[i] = sh.get(i).isIntegralNumber() ? sh.get(i).asLong() : -1;
    }
    if (stated == null || !Arrays.equals(stated, shape)) {
      throw new SafetensorsException(
          at
              + ": shape "
              + (sh == null ? "is missing" : sh.toString())
              + ", config.json implies "
              + Arrays.toString(shape));
    }
    boolean nested = qs.has("nested_blocksize");
    int blocks = Math.toIntExact((numel + blocksize - 1) / blocksize);

    byte[] codes = bytes(tensor(ckpt, weight, DType.U8, new long[] {(numel + 1) / 2, 1}));
    float[] table = floats(ckpt, weight + ".quant_map", new long[] {16});
    float[] nf4 = Nf4.table();
    for (int i = 0; i < 16; i++) {
      if (!(Math.abs(table[i] - nf4[i]) <= 1e-6f)) {
        throw new SafetensorsException(
            ckpt.fileOf(weight + ".quant_map").path()
                + ": tensor "
                + weight
                + ".quant_map holds "
                + table[i]
                + " at "
                + i
                + "; NF4's value is "
                + nf4[i]
                + " (is it an FP4 checkpoint?)");
      }
    }
    if (!nested) {
      for (String s : List.of(".nested_absmax", ".nested_quant_map")) {
        if (ckpt.contains(weight + s)) {
          throw new SafetensorsException(
              at
                  + " has no nested_blocksize, but tensor "
                  + weight
                  + s
                  + " is present: is the quant state of another weight?");
        }
      }
      float[] absmax = floats(ckpt, weight + ".absmax", new long[] {blocks});
      checkScales(ckpt, weight + ".absmax", absmax);
      return checkRange(Nf4Tensor.plain(shape, dtype, blocksize, codes, table, absmax), at);
    }
    int nbs = stateInt(qs, "nested_blocksize", at);
    if (nbs < 1) throw new SafetensorsException(at + ": nested_blocksize " + nbs + " is < 1");
    if (!"float32".equals(stateText(qs, "nested_dtype", at))) {
      throw new SafetensorsException(
          at + ": nested_dtype is '" + qs.get("nested_dtype").asText() + "', expected float32");
    }
    JsonNode off = qs.get("nested_offset");
    if (off == null || !off.isNumber() || !Double.isFinite(off.asDouble())) {
      throw new SafetensorsException(at + ": nested_offset is missing or not a finite number");
    }
    float offset = (float) off.asDouble();
    if (!Float.isFinite(offset)) {
      throw new SafetensorsException(
          at + ": nested_offset " + off.asDouble() + " is beyond the float range");
    }
    byte[] absmaxCodes = bytes(tensor(ckpt, weight + ".absmax", DType.U8, new long[] {blocks}));
    float[] nestedTable = floats(ckpt, weight + ".nested_quant_map", new long[] {256});
    for (int i = 0; i < 256; i++) {
      if (!(Math.abs(nestedTable[i]) <= 1f)) {
        throw new SafetensorsException(
            ckpt.fileOf(weight + ".nested_quant_map").path()
                + ": tensor "
                + weight
                + ".nested_quant_map holds "
                + nestedTable[i]
                + " at "
                + i
                + ", outside [-1, 1]");
      }
    }
    int nestedBlocks = (int) ((blocks + (long) nbs - 1) / nbs); // (in long: nbs may be large)
    float[] nestedAbsmax = floats(ckpt, weight + ".nested_absmax", new long[] {nestedBlocks});
    checkScales(ckpt, weight + ".nested_absmax", nestedAbsmax);
    return checkRange(
        Nf4Tensor.nested(
            shape,
            dtype,
            blocksize,
            codes,
            table,
            absmaxCodes,
            nestedTable,
            nestedAbsmax,
            nbs,
            offset),
        at);
  }

  /**
   * Refuses block scales whose weights the dtype cannot hold: NF4 values lie in [-1, 1], so a
   * block's largest weight is its scale, and a scale at or past the dtype's overflow would load as
   * infinities (and a non-finite one as NaN), which the 16-bit path refuses by name.
   */
  private static Nf4Tensor checkRange(Nf4Tensor t, String at) {
    float[] sc = t.scales();
    int b = t.dtype().firstUnheld(sc);
    if (b >= 0) {
      throw new SafetensorsException(
          at
              + ": block "
              + b
              + " has scale "
              + sc[b]
              + " (its absmax), beyond what the weight's dtype "
              + t.dtype().name()
              + " holds: the weights would load as infinities");
    }
    return t;
  }

  private static void checkScales(Checkpoint ckpt, String name, float[] v) {
    for (int i = 0; i < v.length; i++) {
      if (!(v[i] >= 0f) || Float.isInfinite(v[i])) {
        throw new SafetensorsException(
            ckpt.fileOf(name).path()
                + ": tensor "
                + name
                + " holds "
                + v[i]
                + " at "
                + i
                + "; an absmax is finite and >= 0");
      }
    }
  }

  private static String stateText(JsonNode qs, String key, String at) {
    JsonNode n = qs.get(key);
    if (n == null || !n.isTextual()) {
      throw new SafetensorsException(at + ": key '" + key + "' is missing or not a string");
    }
    return n.textValue();
  }

  private static int stateInt(JsonNode qs, String key, String at) {
    JsonNode n = qs.get(key);
    if (n == null || !n.canConvertToInt() || !n.isIntegralNumber()) {
      throw new SafetensorsException(at + ": key '" + key + "' is missing or not an integer");
    }
    return n.intValue();
  }

  /** The tensor's bytes after checking presence, dtype and (when given) shape. */
  private static ByteBuffer tensor(Checkpoint ckpt, String name, DType dtype, long[] shape) {
    if (!ckpt.contains(name)) {
      throw new SafetensorsException(
          "model folder "
              + ckpt.dir()
              + ": tensor "
              + name
              + " is missing (a 4-bit bitsandbytes weight needs it)");
    }
    DType dt = ckpt.dtype(name);
    if (dt != dtype) {
      throw new SafetensorsException(
          ckpt.fileOf(name).path()
              + ": tensor "
              + name
              + " has dtype "
              + dt
              + ", expected "
              + dtype);
    }
    if (shape != null && !Arrays.equals(ckpt.shape(name), shape)) {
      throw new SafetensorsException(
          ckpt.fileOf(name).path()
              + ": tensor "
              + name
              + " has shape "
              + Arrays.toString(ckpt.shape(name))
              + ", expected "
              + Arrays.toString(shape));
    }
    return ckpt.data(name);
  }

  private static float[] floats(Checkpoint ckpt, String name, long[] shape) {
    float[] v = DType.F32.toFloats(tensor(ckpt, name, DType.F32, shape));
    for (int i = 0; i < v.length; i++) {
      if (!Float.isFinite(v[i])) {
        throw new SafetensorsException(
            ckpt.fileOf(name).path() + ": tensor " + name + " holds " + v[i] + " at " + i);
      }
    }
    return v;
  }

  private static byte[] bytes(ByteBuffer b) {
    byte[] r = new byte[b.remaining()];
    b.duplicate().get(r);
    return r;
  }

  /**
   * Adds an NF4 weight's tensors to a safetensors file, exactly as bitsandbytes saves them.
   *
   * @param w the writer
   * @param weight the weight's name
   * @param t the weight
   */
  public static void add(SafetensorsWriter w, String weight, Nf4Tensor t) {
    w.add(weight, DType.U8, new long[] {t.codes().length, 1}, t.codes());
    w.addFloats(weight + ".quant_map", DType.F32, new long[] {16}, t.table());
    ObjectNode qs = JSON.createObjectNode();
    qs.put("quant_type", "nf4");
    qs.put("blocksize", t.blocksize());
    qs.put(
        "dtype",
        switch (t.dtype()) {
          case BF16 -> "bfloat16";
          case F16 -> "float16";
          default -> "float32";
        });
    qs.putArray("shape").add(t.shape()[0]).add(t.shape()[1]);
    if (t.isNested()) {
      w.add(weight + ".absmax", DType.U8, new long[] {t.absmaxCodes().length}, t.absmaxCodes());
      w.addFloats(weight + ".nested_quant_map", DType.F32, new long[] {256}, t.nestedTable());
      w.addFloats(
          weight + ".nested_absmax",
          DType.F32,
          new long[] {t.nestedAbsmax().length},
          t.nestedAbsmax());
      qs.put("nested_blocksize", t.nestedBlocksize());
      qs.put("nested_dtype", "float32");
      qs.put("nested_offset", (double) t.offset());
    } else {
      w.addFloats(weight + ".absmax", DType.F32, new long[] {t.absmax().length}, t.absmax());
    }
    byte[] json = qs.toString().getBytes(StandardCharsets.UTF_8);
    w.add(weight + QUANT_STATE, DType.U8, new long[] {json.length}, json);
  }

  /**
   * config.json's {@code quantization_config} as transformers writes it for a bitsandbytes NF4
   * model.
   *
   * @param q the quantization (NF4)
   * @param computeDtype {@code bnb_4bit_compute_dtype}, e.g. "bfloat16"
   * @return the JSON object
   */
  public static ObjectNode configJson(Quantization q, String computeDtype) {
    Map<String, Object> m = new LinkedHashMap<>();
    m.put("_load_in_4bit", true);
    m.put("_load_in_8bit", false);
    m.put("bnb_4bit_compute_dtype", computeDtype);
    m.put("bnb_4bit_quant_storage", "uint8");
    m.put("bnb_4bit_quant_type", "nf4");
    m.put("bnb_4bit_use_double_quant", q.doubleQuant());
    m.put("llm_int8_enable_fp32_cpu_offload", false);
    m.put("llm_int8_has_fp16_weight", false);
    m.put("llm_int8_skip_modules", null);
    m.put("llm_int8_threshold", 6.0);
    m.put("load_in_4bit", true);
    m.put("load_in_8bit", false);
    m.put("quant_method", "bitsandbytes");
    return JSON.valueToTree(m);
  }
}
