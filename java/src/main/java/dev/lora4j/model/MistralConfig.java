package dev.lora4j.model;

import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.lora4j.io.JsonErrors;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.TreeMap;

/**
 * The architecture of a Mistral model, read from a Hugging Face {@code config.json}.
 *
 * <p>Defaults follow transformers' {@code MistralConfig} exactly, so that a folder means the same
 * model here as in Python: {@code head_dim} absent or null = {@code hidden_size /
 * num_attention_heads}; {@code num_key_value_heads} null = {@code num_attention_heads} but absent =
 * 8 (transformers' default); {@code sliding_window} null = no window but absent = 4096
 * (transformers' default); {@code max_position_embeddings} 131072; {@code rms_norm_eps} 1e-6;
 * {@code bos_token_id} 1, {@code eos_token_id} 2 (a list: its first entry). RoPE base: the
 * top-level {@code rope_theta} real Mistral releases write, or {@code rope_parameters.rope_theta}
 * transformers 5 writes (both present must agree), else 10000.
 *
 * <p>Required keys: {@code model_type} ("mistral"), {@code vocab_size}, {@code hidden_size}, {@code
 * intermediate_size}, {@code num_hidden_layers}, {@code num_attention_heads}. Rejected with a
 * {@link ConfigException} naming the file and key: a missing required key, a value of the wrong
 * type, a size that is not positive, query heads not a multiple of KV heads, {@code hidden_size}
 * not divisible by the heads when {@code head_dim} is absent, another {@code model_type}, tied
 * embeddings, an activation other than silu, and RoPE scaling.
 *
 * @param vocabSize number of tokens
 * @param hiddenSize model width
 * @param intermediateSize MLP width
 * @param numHiddenLayers decoder layers
 * @param numAttentionHeads query heads
 * @param numKeyValueHeads key/value heads (GQA)
 * @param headDim size of one head
 * @param maxPositionEmbeddings longest sequence the model was made for
 * @param rmsNormEps RMSNorm epsilon
 * @param ropeTheta RoPE base
 * @param slidingWindow attention window, or null for full causal attention
 * @param tieWordEmbeddings whether the LM head shares the embedding (always false here)
 * @param bosTokenId beginning-of-sequence token id, or null
 * @param eosTokenId end-of-sequence token id, or null
 * @param modelType always {@code "mistral"}
 */
public record MistralConfig(
    int vocabSize,
    int hiddenSize,
    int intermediateSize,
    int numHiddenLayers,
    int numAttentionHeads,
    int numKeyValueHeads,
    int headDim,
    int maxPositionEmbeddings,
    double rmsNormEps,
    double ropeTheta,
    Integer slidingWindow,
    boolean tieWordEmbeddings,
    Integer bosTokenId,
    Integer eosTokenId,
    String modelType) {

  /** The model type this class accepts. */
  public static final String MODEL_TYPE = "mistral";

  private static final ObjectMapper JSON =
      new ObjectMapper().enable(JsonParser.Feature.STRICT_DUPLICATE_DETECTION);

  /** Checks the invariants (positive sizes, head counts, model type, no tied embeddings). */
  public MistralConfig {
    check(
        "config",
        vocabSize,
        hiddenSize,
        intermediateSize,
        numHiddenLayers,
        numAttentionHeads,
        numKeyValueHeads,
        headDim,
        maxPositionEmbeddings,
        rmsNormEps,
        ropeTheta,
        slidingWindow,
        tieWordEmbeddings,
        modelType);
  }

  private static void check(
      String src,
      int vocabSize,
      int hiddenSize,
      int intermediateSize,
      int numHiddenLayers,
      int numAttentionHeads,
      int numKeyValueHeads,
      int headDim,
      int maxPositionEmbeddings,
      double rmsNormEps,
      double ropeTheta,
      Integer slidingWindow,
      boolean tieWordEmbeddings,
      String modelType) {
    if (!MODEL_TYPE.equals(modelType)) {
      throw new ConfigException(
          src
              + ": key 'model_type' is '"
              + modelType
              + "'; lora4j supports only \"mistral\" models");
    }
    positive(src, "vocab_size", vocabSize);
    positive(src, "hidden_size", hiddenSize);
    positive(src, "intermediate_size", intermediateSize);
    positive(src, "num_hidden_layers", numHiddenLayers);
    positive(src, "num_attention_heads", numAttentionHeads);
    positive(src, "num_key_value_heads", numKeyValueHeads);
    positive(src, "head_dim", headDim);
    positive(src, "max_position_embeddings", maxPositionEmbeddings);
    if ((long) numAttentionHeads * headDim > Integer.MAX_VALUE) {
      throw new ConfigException(
          src
              + ": num_attention_heads "
              + numAttentionHeads
              + " x head_dim "
              + headDim
              + " is too large (the q_proj width must fit in an int)");
    }
    if (numAttentionHeads % numKeyValueHeads != 0) {
      throw new ConfigException(
          src
              + ": key 'num_key_value_heads' = "
              + numKeyValueHeads
              + " does not divide num_attention_heads = "
              + numAttentionHeads);
    }
    if (!(rmsNormEps > 0) || Double.isInfinite(rmsNormEps)) {
      throw new ConfigException(
          src + ": key 'rms_norm_eps' = " + rmsNormEps + " must be a positive number");
    }
    if (!(ropeTheta > 0) || Double.isInfinite(ropeTheta)) {
      throw new ConfigException(
          src + ": key 'rope_theta' = " + ropeTheta + " must be a positive number");
    }
    if (slidingWindow != null) positive(src, "sliding_window", slidingWindow);
    if (tieWordEmbeddings) {
      throw new ConfigException(
          src
              + ": key 'tie_word_embeddings' is true; lora4j supports "
              + "only Mistral models with a separate LM head (tie_word_embeddings false)");
    }
  }

  private static void positive(String src, String key, long v) {
    if (v <= 0) {
      throw new ConfigException(src + ": key '" + key + "' = " + v + " must be positive");
    }
  }

  /**
   * @return {@code numAttentionHeads * headDim}, the width of q_proj's output
   */
  public int qDim() {
    return numAttentionHeads * headDim;
  }

  /**
   * @return {@code numKeyValueHeads * headDim}, the width of k_proj's and v_proj's output
   */
  public int kvDim() {
    return numKeyValueHeads * headDim;
  }

  /**
   * A model folder's config.json, checked to be there: the one message every command gives for a
   * folder without it (a dangling link named as such).
   *
   * @throws dev.lora4j.Lora4jException when it is missing
   */
  public static Path fileIn(Path modelDir) {
    Path f = modelDir.resolve("config.json");
    if (!Files.isRegularFile(f)) {
      throw new dev.lora4j.Lora4jException(
          Files.isSymbolicLink(f)
              ? f + " is a symbolic link to a file that does not exist"
              : "model folder "
                  + modelDir
                  + " has no config.json: is it a Hugging Face model folder?");
    }
    return f;
  }

  /**
   * Reads {@code config.json}.
   *
   * @param file the config file, or a model folder holding {@code config.json}
   * @return the config
   * @throws ConfigException naming the file when it cannot be read or is invalid
   */
  public static MistralConfig load(Path file) {
    Path f = Files.isDirectory(file) ? file.resolve("config.json") : file;
    String text;
    try {
      text = Files.readString(f, StandardCharsets.UTF_8);
    } catch (IOException e) {
      throw new ConfigException(f + ": cannot read model config: " + e, e);
    }
    return parse(text, f.toString());
  }

  /**
   * Parses the text of a {@code config.json}.
   *
   * @param json the JSON text
   * @param sourceName the file name (or other origin) used in error messages
   * @return the config
   * @throws ConfigException naming {@code sourceName} and the key when invalid
   */
  public static MistralConfig parse(String json, String sourceName) {
    JsonNode root;
    try {
      root = JSON.readTree(json);
    } catch (JsonProcessingException e) {
      throw new ConfigException(sourceName + ": not valid JSON: " + JsonErrors.describe(e), e);
    }
    if (root == null || !root.isObject()) {
      throw new ConfigException(sourceName + ": not a JSON object");
    }
    Reader r = new Reader(root, sourceName);
    String modelType = r.string("model_type", true, null);
    if (!MODEL_TYPE.equals(modelType)) {
      throw new ConfigException(
          sourceName
              + ": key 'model_type' is '"
              + modelType
              + "'; lora4j supports only \"mistral\" models");
    }
    int vocab = r.integer("vocab_size", true, 0);
    int hidden = r.integer("hidden_size", true, 0);
    int inter = r.integer("intermediate_size", true, 0);
    int layers = r.integer("num_hidden_layers", true, 0);
    int heads = r.integer("num_attention_heads", true, 0);
    positive(sourceName, "hidden_size", hidden);
    positive(sourceName, "num_attention_heads", heads);
    int kvHeads =
        root.has("num_key_value_heads") && root.get("num_key_value_heads").isNull()
            ? heads
            : r.integer("num_key_value_heads", false, 8);
    Integer headDimOrNull = r.optionalInteger("head_dim");
    int headDim;
    if (headDimOrNull != null) {
      headDim = headDimOrNull;
    } else {
      if (hidden % heads != 0) {
        throw new ConfigException(
            sourceName
                + ": key 'head_dim' is absent and hidden_size "
                + hidden
                + " is not divisible by num_attention_heads "
                + heads);
      }
      headDim = hidden / heads;
    }
    int maxPos = r.integer("max_position_embeddings", false, 4096 * 32);
    double eps = r.number("rms_norm_eps", false, 1e-6);
    String act = r.string("hidden_act", false, "silu");
    if (!"silu".equals(act)) {
      throw new ConfigException(
          sourceName
              + ": key 'hidden_act' is '"
              + act
              + "'; Mistral models use \"silu\" and lora4j supports only that");
    }
    JsonNode scaling = root.get("rope_scaling");
    if (scaling != null && !scaling.isNull()) {
      throw new ConfigException(
          sourceName
              + ": key 'rope_scaling' is set ("
              + scaling
              + "); RoPE scaling is not supported");
    }
    double theta = ropeTheta(root, r, sourceName);
    Integer window =
        root.has("sliding_window") ? r.optionalInteger("sliding_window") : Integer.valueOf(4096);
    boolean tie = r.bool("tie_word_embeddings", false, false);
    Integer bos = root.has("bos_token_id") ? r.optionalInteger("bos_token_id") : Integer.valueOf(1);
    Integer eos;
    JsonNode eosNode = root.get("eos_token_id");
    if (eosNode == null) {
      eos = 2;
    } else if (eosNode.isArray()) {
      eos =
          eosNode.isEmpty() ? null : Integer.valueOf(r.intValue("eos_token_id[0]", eosNode.get(0)));
    } else {
      eos = r.optionalInteger("eos_token_id");
    }
    check(
        sourceName,
        vocab,
        hidden,
        inter,
        layers,
        heads,
        kvHeads,
        headDim,
        maxPos,
        eps,
        theta,
        window,
        tie,
        modelType);
    return new MistralConfig(
        vocab, hidden, inter, layers, heads, kvHeads, headDim, maxPos, eps, theta, window, tie, bos,
        eos, modelType);
  }

  private static double ropeTheta(JsonNode root, Reader r, String src) {
    Double top =
        root.has("rope_theta") && !root.get("rope_theta").isNull()
            ? r.number("rope_theta", true, 0)
            : null;
    Double nested = null;
    JsonNode rp = root.get("rope_parameters");
    if (rp != null && !rp.isNull()) {
      if (!rp.isObject()) {
        throw new ConfigException(src + ": key 'rope_parameters' must be an object");
      }
      JsonNode type = rp.get("rope_type");
      if (type != null && !type.isNull() && !"default".equals(type.asText())) {
        throw new ConfigException(
            src
                + ": key 'rope_parameters.rope_type' is '"
                + type.asText()
                + "'; only \"default\" RoPE is supported");
      }
      JsonNode t = rp.get("rope_theta");
      if (t != null && !t.isNull()) {
        if (!t.isNumber()) {
          throw new ConfigException(
              src + ": key 'rope_parameters.rope_theta' must be a number," + " found " + t);
        }
        nested = t.doubleValue();
      }
    }
    if (top != null && nested != null && top.doubleValue() != nested.doubleValue()) {
      throw new ConfigException(
          src
              + ": key 'rope_theta' = "
              + top
              + " disagrees with 'rope_parameters.rope_theta' = "
              + nested);
    }
    return nested != null ? nested : top != null ? top : 10000.0;
  }

  /**
   * The config as a Hugging Face {@code config.json} (keys sorted, two-space indent, as
   * transformers writes it). RoPE base is written both as top-level {@code rope_theta} (read by
   * transformers 4) and as {@code rope_parameters} (transformers 5).
   *
   * @return the JSON text, ending in a newline
   */
  public String toJson() {
    TreeMap<String, Object> m = new TreeMap<>();
    m.put("architectures", java.util.List.of("MistralForCausalLM"));
    m.put("model_type", modelType);
    m.put("vocab_size", vocabSize);
    m.put("hidden_size", hiddenSize);
    m.put("intermediate_size", intermediateSize);
    m.put("num_hidden_layers", numHiddenLayers);
    m.put("num_attention_heads", numAttentionHeads);
    m.put("num_key_value_heads", numKeyValueHeads);
    m.put("head_dim", headDim);
    m.put("hidden_act", "silu");
    m.put("max_position_embeddings", maxPositionEmbeddings);
    m.put("rms_norm_eps", rmsNormEps);
    m.put("rope_theta", ropeTheta);
    TreeMap<String, Object> rp = new TreeMap<>();
    rp.put("rope_theta", ropeTheta);
    rp.put("rope_type", "default");
    m.put("rope_parameters", rp);
    m.put("sliding_window", slidingWindow);
    m.put("tie_word_embeddings", tieWordEmbeddings);
    m.put("bos_token_id", bosTokenId);
    m.put("eos_token_id", eosTokenId);
    m.put("attention_dropout", 0.0);
    m.put("use_cache", true);
    m.put("dtype", "bfloat16");
    m.put("torch_dtype", "bfloat16");
    ObjectNode node = JSON.valueToTree(m);
    return Json.pretty(node) + "\n";
  }

  /** Typed access to a config object with messages naming the source and key. */
  private record Reader(JsonNode root, String src) {
    int integer(String key, boolean required, int dflt) {
      JsonNode n = root.get(key);
      if (n == null || n.isNull()) {
        if (required) {
          throw new ConfigException(src + ": required key '" + key + "' is missing");
        }
        return dflt;
      }
      return intValue(key, n);
    }

    Integer optionalInteger(String key) {
      JsonNode n = root.get(key);
      return n == null || n.isNull() ? null : intValue(key, n);
    }

    int intValue(String key, JsonNode n) {
      if (!n.isIntegralNumber() || !n.canConvertToInt()) {
        throw new ConfigException(src + ": key '" + key + "' must be an integer, found " + n);
      }
      return n.intValue();
    }

    double number(String key, boolean required, double dflt) {
      JsonNode n = root.get(key);
      if (n == null || n.isNull()) {
        if (required) {
          throw new ConfigException(src + ": required key '" + key + "' is missing");
        }
        return dflt;
      }
      if (!n.isNumber()) {
        throw new ConfigException(src + ": key '" + key + "' must be a number, found " + n);
      }
      return n.doubleValue();
    }

    String string(String key, boolean required, String dflt) {
      JsonNode n = root.get(key);
      if (n == null || n.isNull()) {
        if (required) {
          throw new ConfigException(src + ": required key '" + key + "' is missing");
        }
        return dflt;
      }
      if (!n.isTextual()) {
        throw new ConfigException(src + ": key '" + key + "' must be a string, found " + n);
      }
      return n.textValue();
    }

    boolean bool(String key, boolean required, boolean dflt) {
      JsonNode n = root.get(key);
      if (n == null || n.isNull()) {
        if (required) {
          throw new ConfigException(src + ": required key '" + key + "' is missing");
        }
        return dflt;
      }
      if (!n.isBoolean()) {
        throw new ConfigException(src + ": key '" + key + "' must be true or false, found " + n);
      }
      return n.booleanValue();
    }
  }
}
