package dev.lora4j.gguf;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.lora4j.Lora4jException;
import dev.lora4j.MistralModel;
import dev.lora4j.io.OutputFile;
import dev.lora4j.model.MergedExport;
import dev.lora4j.model.MistralConfig;
import dev.lora4j.model.peft.LoraAdapter;
import dev.lora4j.model.peft.LoraTarget;
import dev.lora4j.safetensors.Checkpoint;
import dev.lora4j.tokenizer.ChatTemplate;
import dev.lora4j.tokenizer.Tokenizer;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.logging.Logger;

/**
 * Writes a Mistral model folder, with or without a LoRA adapter folded in, as a GGUF file that
 * llama.cpp (and so Ollama) loads; or a PEFT adapter as a llama.cpp LoRA adapter GGUF that
 * llama.cpp applies to the base model's GGUF.
 *
 * <pre>{@code
 * GgufExport.writeModel(Path.of("mistral-7b"), Path.of("results/adapter"), Path.of("tuned-q8_0.gguf"),
 *     GgufExport.Type.Q8_0, false);
 * GgufExport.writeModel(Path.of("mistral-7b"), null, Path.of("base-f16.gguf"), GgufExport.Type.F16, false);
 * GgufExport.writeAdapter(Path.of("mistral-7b"), Path.of("results/adapter"), Path.of("adapter.gguf"),
 *     GgufExport.Type.F32, false);
 * }</pre>
 *
 * <p><b>Model file.</b> Architecture {@code llama} (llama.cpp runs Mistral 7B as llama) with
 * context length, embedding and feed-forward widths, blocks, heads, KV heads, head size, RMSNorm
 * epsilon, RoPE base and, where config.json sets one, the sliding window (llama.cpp's llama
 * architecture attends to the whole context: outputs agree up to the window's length). Tensors are
 * renamed as llama.cpp's converter names them ({@code token_embd}, {@code blk.N.attn_q}, {@code
 * output}, ...). The query and key weights are permuted from Hugging Face's RoPE layout
 * (rotate_half: element {@code i} pairs with {@code i + d/2} within a head) to llama.cpp's
 * (adjacent pairs {@code 2i, 2i+1}): within each head, row {@code 2i + s} of the GGUF weight is row
 * {@code s * d/2 + i} of the Hugging Face weight; the attention scores are unchanged because
 * queries and keys are permuted alike. Norm weights are F32, matrices the chosen type; an adapter
 * is folded in fp32 ({@code W + scale * B A}) before the one rounding to that type.
 *
 * <p><b>Tokenizer.</b> llama.cpp's SentencePiece tokenizer ({@code tokenizer.ggml.model =
 * "llama"}): every token with its score and type, the BOS/EOS/UNK/PAD ids, add_bos/add_eos from
 * tokenizer_config.json, the space prefix, and the chat template. llama.cpp merges the adjacent
 * pair that forms the highest-scoring token; a token's score here is minus the rank of the first
 * merge in tokenizer.json that produces it, which makes llama.cpp's merges those of the BPE model
 * ({@link Tokenizer#sentencePieceDifferences()} says where it would not be so). (llama.cpp's own
 * converter gives every token of a tokenizer.json-only model the same score, -1000, so that its
 * merges follow text order instead.)
 *
 * <p><b>Adapter file.</b> {@code general.type = "adapter"}, {@code adapter.type = "lora"}, {@code
 * adapter.lora.alpha}, and per adapted weight {@code blk.N.attn_q.weight.lora_a} (A, {@code [r,
 * in]}) and {@code .lora_b} (B, {@code [out, r]}), B's rows permuted like the base weight's for
 * queries and keys. llama.cpp scales by alpha / r; for rsLoRA (alpha / sqrt(r)) the alpha written
 * is alpha * sqrt(r).
 *
 * <p>Every output is written under a temporary name beside it and renamed when complete; an
 * existing file is refused unless overwrite. Inputs are checked before anything is written: the
 * model's tensors (all present, shapes as config.json says), the adapter against the model.
 */
public final class GgufExport {
  private static final Logger LOG = Logger.getLogger(GgufExport.class.getName());
  private static final ObjectMapper JSON = new ObjectMapper();

  /** llama.cpp token types ({@code llama_token_type}). */
  static final int TOKEN_NORMAL = 1,
      TOKEN_UNKNOWN = 2,
      TOKEN_CONTROL = 3,
      TOKEN_USER_DEFINED = 4,
      TOKEN_UNUSED = 5,
      TOKEN_BYTE = 6;

  private GgufExport() {}

  /** The type of the exported matrices. */
  public enum Type {
    /** 32-bit floats (4 bytes per weight). */
    F32(GgmlType.F32, 0),
    /** IEEE half (2 bytes per weight); a weight beyond ±65504 is refused. */
    F16(GgmlType.F16, 1),
    /** bfloat16, the dtype Mistral is released in (2 bytes per weight). */
    BF16(GgmlType.BF16, 32),
    /** ggml's 8-bit blocks (34 bytes per 32 weights); rows not a multiple of 32 stay F16. */
    Q8_0(GgmlType.Q8_0, 7);

    private final GgmlType ggml;
    private final int fileType;

    Type(GgmlType ggml, int fileType) {
      this.ggml = ggml;
      this.fileType = fileType;
    }

    /**
     * @return the ggml type of the matrices
     */
    public GgmlType ggml() {
      return ggml;
    }

    /**
     * @return llama.cpp's {@code general.file_type} (llama_ftype) of a model of this type
     */
    public int fileType() {
      return fileType;
    }

    /**
     * @param s f32, f16, bf16 or q8_0 (any case)
     * @return the type
     * @throws IllegalArgumentException for another name
     */
    public static Type parse(String s) {
      try {
        return valueOf(s.trim().toUpperCase(Locale.ROOT));
      } catch (IllegalArgumentException e) {
        throw new IllegalArgumentException(
            "unknown GGUF type '" + s + "': use f16, bf16, q8_0 or f32");
      }
    }

    @Override
    public String toString() {
      return name().toLowerCase(Locale.ROOT);
    }
  }

  /**
   * What an export wrote.
   *
   * @param file the GGUF file
   * @param tensors tensors written
   * @param bytes size of the file
   * @param notes what the user should know (a setting llama.cpp ignores, rows kept in F16,
   *     tokenizer differences); also logged as warnings
   */
  public record Result(Path file, int tensors, long bytes, List<String> notes) {}

  // ---------------------------------------------------------------------------------------------
  // model
  // ---------------------------------------------------------------------------------------------

  /**
   * Writes the model folder as a GGUF file, with the adapter folder folded in when not null.
   *
   * @param modelDir Hugging Face model folder (config.json, safetensors, tokenizer.json)
   * @param adapterDir PEFT adapter folder, or null for the base model
   * @param output the GGUF file to write; refused when it exists unless overwrite, or when it is
   *     one of the inputs
   * @param type type of the matrices
   * @param overwrite whether an existing output file may be replaced
   * @return what was written
   * @throws Lora4jException for a bad input (a missing tensor, an adapter of another model, a
   *     weight that does not fit the type); nothing is left at output then
   */
  public static Result writeModel(
      Path modelDir, Path adapterDir, Path output, Type type, boolean overwrite) {
    Map<String, Path> inputs = new LinkedHashMap<>();
    inputs.put("model folder", modelDir);
    inputs.put("adapter folder", adapterDir);
    OutputFile.checkApart(output, "output file", inputs);
    OutputFile.checkWritable(output, overwrite);
    MistralConfig cfg = loadConfig(modelDir);
    LoraAdapter adapter = null;
    if (adapterDir != null) {
      adapter = LoraAdapter.read(adapterDir);
      adapter.validate(cfg);
    }
    List<String> notes = new ArrayList<>();
    GgufWriter w = new GgufWriter();
    String name =
        modelDir.toAbsolutePath().normalize().getFileName().toString()
            + (adapterDir == null
                ? ""
                : " + " + adapterDir.toAbsolutePath().normalize().getFileName());
    try (Checkpoint ckpt = Checkpoint.open(modelDir)) {
      refuse4bit(modelDir, ckpt);
      MistralModel.checkWeights(cfg, ckpt);
      modelMetadata(w, cfg, name, type, notes);
      // a merged export says so: an adapter GGUF is for the base model's own GGUF, and a base
      // with the adapter already in it would take the adapter twice (checkBaseModel refuses it)
      if (adapterDir != null) w.putString(MERGED_KEY, adapterDir.toAbsolutePath().toString());
      tokenizerMetadata(w, modelDir, cfg, notes);
      int count = 0;
      for (Map.Entry<String, long[]> e : MistralModel.expectedWeights(cfg).entrySet()) {
        String hf = e.getKey();
        long[] shape = e.getValue();
        String gg = ggufName(hf);
        LoraTarget target = targetOf(hf);
        int layer = target == null ? -1 : layerOf(hf);
        boolean fold =
            adapter != null && target != null && adapter.config().targets().contains(target);
        GgmlType t = shape.length == 1 ? GgmlType.F32 : type.ggml();
        if (!t.fitsRow(shape[shape.length - 1])) {
          notes.add(
              gg
                  + ": rows of "
                  + shape[shape.length - 1]
                  + " are not a multiple of "
                  + t.blockSize()
                  + ", kept in f16");
          t = GgmlType.F16;
        }
        final GgmlType tt = t;
        final LoraAdapter ad = adapter;
        long[] ne = shape.length == 1 ? new long[] {shape[0]} : new long[] {shape[1], shape[0]};
        w.tensorParts(
            gg,
            tt,
            ne,
            () -> {
              float[] v = ckpt.readFloat(hf);
              if (fold) {
                MergedExport.fold(v, ad.a(layer, target), ad.b(layer, target), ad.config().scale());
              }
              check(v, hf, tt);
              if (target == LoraTarget.Q_PROJ)
                v = permuteRope(v, (int) shape[0], (int) shape[1], cfg.numAttentionHeads());
              if (target == LoraTarget.K_PROJ)
                v = permuteRope(v, (int) shape[0], (int) shape[1], cfg.numKeyValueHeads());
              return tt.encodeParts(v);
            });
        count++;
      }
      return write(w, output, overwrite, count, notes);
    }
  }

  /**
   * Writes a PEFT adapter as a llama.cpp LoRA adapter GGUF for the model folder's GGUF export.
   *
   * @param modelDir the base model folder the adapter was trained on (checked against it)
   * @param adapterDir PEFT adapter folder
   * @param output the GGUF file to write
   * @param type F32 (exact), F16 or BF16 for the LoRA factors (not Q8_0: their rows are the rank)
   * @param overwrite whether an existing output file may be replaced
   * @return what was written
   * @throws Lora4jException for an adapter of another model or an unusable type
   */
  public static Result writeAdapter(
      Path modelDir, Path adapterDir, Path output, Type type, boolean overwrite) {
    Map<String, Path> inputs = new LinkedHashMap<>();
    inputs.put("model folder", modelDir);
    inputs.put("adapter folder", adapterDir);
    OutputFile.checkApart(output, "output file", inputs);
    OutputFile.checkWritable(output, overwrite);
    return writeAdapter(
        modelDir, adapterDir, checkAdapter(modelDir, adapterDir, type), output, type, overwrite);
  }

  /**
   * {@link #writeAdapter(Path, Path, Path, Type, boolean)} of an adapter {@link #checkAdapter}
   * returned (read and checked once), the output checked apart and writable by the caller.
   */
  public static Result writeAdapter(
      Path modelDir,
      Path adapterDir,
      LoraAdapter adapter,
      Path output,
      Type type,
      boolean overwrite) {
    MistralConfig cfg = loadConfig(modelDir);
    List<String> notes = new ArrayList<>();
    int r = adapter.config().r();
    GgufWriter w = new GgufWriter();
    w.putString("general.architecture", "llama");
    w.putString("general.type", "adapter");
    w.putString("general.name", adapterDir.toAbsolutePath().normalize().getFileName().toString());
    w.putString("adapter.type", "lora");
    // llama.cpp scales by alpha / rank, the rank read from lora_B
    w.putF32("adapter.lora.alpha", adapter.config().scale() * r);
    int count = 0;
    for (int layer = 0; layer < cfg.numHiddenLayers(); layer++) {
      for (LoraTarget t : adapter.config().targets()) {
        String base = "blk." + layer + "." + ggufModule(t) + ".weight";
        LoraAdapter.Weight a = adapter.a(layer, t), b = adapter.b(layer, t);
        int heads =
            t == LoraTarget.Q_PROJ
                ? cfg.numAttentionHeads()
                : t == LoraTarget.K_PROJ ? cfg.numKeyValueHeads() : 0;
        GgmlType gt = type.ggml();
        final int l = layer;
        w.tensor(
            base + ".lora_a", gt, new long[] {a.cols(), a.rows()}, () -> gt.encode(a.values()));
        w.tensor(
            base + ".lora_b",
            gt,
            new long[] {b.cols(), b.rows()},
            () ->
                gt.encode(
                    heads > 0 ? permuteRope(b.values(), b.rows(), b.cols(), heads) : b.values()));
        count += 2;
      }
    }
    return write(w, output, overwrite, count, notes);
  }

  /**
   * Reads the adapter folder and checks it for an adapter GGUF of the type: written for this model,
   * every factor finite and within the type's range. {@link #writeAdapter} does it first; the
   * command line does it before it writes a base GGUF beside the adapter, so that a bad adapter
   * leaves neither file.
   *
   * @throws IllegalArgumentException for q8_0 (the factors' rows are the rank)
   * @throws Lora4jException naming the tensor otherwise
   */
  public static LoraAdapter checkAdapter(Path modelDir, Path adapterDir, Type type) {
    if (type == Type.Q8_0) {
      throw new IllegalArgumentException(
          "a LoRA adapter GGUF holds f32, f16 or bf16 factors, not q8_0"
              + " (q8_0 blocks need rows of 32 values; lora_B rows are the rank)");
    }
    MistralConfig cfg = loadConfig(modelDir);
    LoraAdapter adapter = LoraAdapter.read(adapterDir);
    adapter.validate(cfg);
    for (int layer = 0; layer < cfg.numHiddenLayers(); layer++) {
      for (LoraTarget t : adapter.config().targets()) {
        check(adapter.a(layer, t).values(), LoraAdapter.key(layer, t, false), type.ggml());
        check(adapter.b(layer, t).values(), LoraAdapter.key(layer, t, true), type.ggml());
      }
    }
    return adapter;
  }

  /** Metadata key of a merged export: the adapter folder folded into its weights. */
  static final String MERGED_KEY = "lora4j.merged_adapter";

  /**
   * Refuses a model folder saved by bitsandbytes in 4 bits: its projections are packed NF4 codes,
   * which a GGUF of llama.cpp's types does not hold as they are. {@code lora4j merge} writes the
   * folder as a 16-bit model (dequantized, the adapter folded in), which exports.
   */
  static void refuse4bit(Path modelDir, Checkpoint ckpt) {
    boolean q = dev.lora4j.model.nf4.Bnb4bit.readConfig(modelDir.resolve("config.json")) != null;
    for (String n : ckpt.names()) q |= n.endsWith(dev.lora4j.model.nf4.Bnb4bit.QUANT_STATE);
    if (q) {
      throw new Lora4jException(
          "model folder "
              + modelDir
              + " holds 4-bit (bitsandbytes NF4) weights, which export-gguf does not read: write"
              + " it as a 16-bit model first with `lora4j merge --model "
              + modelDir
              + " --adapter ADAPTER --output DIR`, then export DIR");
    }
  }

  /**
   * Checks that an existing GGUF file is an export of the model folder (a base for an adapter
   * GGUF): architecture, widths, blocks, heads, vocabulary size, and the shape of every tensor
   * llama.cpp applies the adapter to; and that it is not a merged export (the adapter already in
   * its weights, which llama.cpp would then apply twice).
   *
   * @throws Lora4jException naming the first difference
   */
  public static void checkBaseModel(Path gguf, Path modelDir) {
    MistralConfig cfg = loadConfig(modelDir);
    try (GgufFile f = GgufFile.open(gguf)) {
      String merged = f.string(MERGED_KEY);
      String name = f.string("general.name");
      String model = modelDir.toAbsolutePath().normalize().getFileName() + " + ";
      if (merged != null || (name != null && name.startsWith(model))) {
        throw new Lora4jException(
            gguf
                + " is a merged export (an adapter, "
                + (merged != null ? merged : name.substring(model.length()))
                + ", already folded into its weights): llama.cpp would apply the adapter on top"
                + " of it; give --base-gguf the base model's own GGUF (export-gguf --model "
                + modelDir
                + " without --adapter), or a path where it does not exist yet to have it"
                + " written");
      }
      String arch = f.string("general.architecture");
      if (!"llama".equals(arch)) {
        throw new Lora4jException(
            gguf + " has architecture " + arch + ", not llama: it is not a GGUF of " + modelDir);
      }
      Map<String, Long> want = new LinkedHashMap<>();
      want.put("llama.embedding_length", (long) cfg.hiddenSize());
      want.put("llama.feed_forward_length", (long) cfg.intermediateSize());
      want.put("llama.block_count", (long) cfg.numHiddenLayers());
      want.put("llama.attention.head_count", (long) cfg.numAttentionHeads());
      want.put("llama.attention.head_count_kv", (long) cfg.numKeyValueHeads());
      for (Map.Entry<String, Long> e : want.entrySet()) {
        Long v = f.integer(e.getKey());
        if (!e.getValue().equals(v)) {
          throw new Lora4jException(
              gguf
                  + ": "
                  + e.getKey()
                  + " is "
                  + v
                  + " but "
                  + modelDir
                  + " has "
                  + e.getValue()
                  + ": it is not a GGUF of that model");
        }
      }
      for (Map.Entry<String, long[]> e : MistralModel.expectedWeights(cfg).entrySet()) {
        String gg = ggufName(e.getKey());
        GgufFile.TensorInfo t = f.tensors().get(gg);
        long[] s = e.getValue();
        long[] ne = s.length == 1 ? new long[] {s[0]} : new long[] {s[1], s[0]};
        if (t == null || !java.util.Arrays.equals(t.ne(), ne)) {
          throw new Lora4jException(
              gguf
                  + ": tensor "
                  + gg
                  + (t == null
                      ? " is missing"
                      : " has shape "
                          + java.util.Arrays.toString(t.ne())
                          + ", "
                          + modelDir
                          + " needs "
                          + java.util.Arrays.toString(ne))
                  + ": it is not a GGUF of that model");
        }
      }
    }
  }

  private static Result write(
      GgufWriter w, Path output, boolean overwrite, int tensors, List<String> notes) {
    try (OutputFile out = OutputFile.stage(output, overwrite)) {
      w.write(out.path());
      long bytes = Files.size(out.path());
      out.commit();
      for (String n : notes) LOG.warning(n);
      return new Result(output, tensors, bytes, List.copyOf(notes));
    } catch (IOException e) {
      throw new Lora4jException("cannot write " + output + ": " + e, e);
    }
  }

  private static MistralConfig loadConfig(Path modelDir) {
    return MistralConfig.load(MistralConfig.fileIn(modelDir));
  }

  /** Refuses values the type cannot hold (non-finite anywhere; beyond the f16 range for F16). */
  private static void check(float[] v, String name, GgmlType t) {
    for (float x : v) {
      if (!Float.isFinite(x)) {
        throw new Lora4jException(
            "tensor " + name + " holds a value that is not finite (" + x + ")");
      }
      if (t == GgmlType.F16 && Math.abs(x) > 65504f) {
        throw new Lora4jException(
            "tensor "
                + name
                + " holds "
                + x
                + ", beyond the range of f16"
                + " (65504): export as bf16 or f32");
      }
    }
  }

  static void modelMetadata(
      GgufWriter w, MistralConfig c, String name, Type type, List<String> notes) {
    w.putString("general.architecture", "llama");
    w.putString("general.type", "model");
    w.putString("general.name", name);
    w.putU32("general.file_type", type.fileType());
    if (type == Type.Q8_0) w.putU32("general.quantization_version", 2);
    w.putU32("llama.vocab_size", c.vocabSize());
    w.putU32("llama.context_length", c.maxPositionEmbeddings());
    w.putU32("llama.embedding_length", c.hiddenSize());
    w.putU32("llama.block_count", c.numHiddenLayers());
    w.putU32("llama.feed_forward_length", c.intermediateSize());
    w.putU32("llama.rope.dimension_count", c.headDim());
    w.putF32("llama.rope.freq_base", c.ropeTheta());
    w.putU32("llama.attention.head_count", c.numAttentionHeads());
    w.putU32("llama.attention.head_count_kv", c.numKeyValueHeads());
    w.putU32("llama.attention.key_length", c.headDim());
    w.putU32("llama.attention.value_length", c.headDim());
    w.putF32("llama.attention.layer_norm_rms_epsilon", c.rmsNormEps());
    if (c.slidingWindow() != null) {
      w.putU32("llama.attention.sliding_window", c.slidingWindow());
      if (c.slidingWindow() < c.maxPositionEmbeddings()) {
        notes.add(
            "config.json sets sliding_window "
                + c.slidingWindow()
                + " (written as llama.attention.sliding_window), but llama.cpp's llama architecture"
                + " attends to the whole context: outputs agree with lora4j for sequences of up to "
                + c.slidingWindow()
                + " tokens");
      }
    }
  }

  /** Vocabulary, scores, token types, special ids and the chat template of the model folder. */
  static void tokenizerMetadata(GgufWriter w, Path modelDir, MistralConfig c, List<String> notes) {
    if (!Files.isRegularFile(modelDir.resolve("tokenizer.json"))) {
      throw new Lora4jException(
          "model folder "
              + modelDir
              + " has no tokenizer.json: a GGUF file"
              + " carries the vocabulary, and llama.cpp needs it");
    }
    Tokenizer tok = Tokenizer.fromModelDir(modelDir);
    if (tok.vocabSize() > c.vocabSize()) {
      throw new Lora4jException(
          modelDir.resolve("tokenizer.json")
              + ": the tokenizer has "
              + tok.vocabSize()
              + " tokens but config.json vocab_size is "
              + c.vocabSize());
    }
    for (String d : tok.sentencePieceDifferences()) {
      notes.add("llama.cpp may tokenize some text differently from this tokenizer: " + d);
    }
    int n = c.vocabSize();
    List<String> tokens = new ArrayList<>(n);
    float[] scores = new float[n];
    int[] types = new int[n];
    int merges = 0;
    for (int id = 0; id < tok.vocabSize(); id++)
      merges = Math.max(merges, tok.firstMergeRank(id) + 1);
    for (int id = 0; id < n; id++) {
      String text = null;
      if (id < tok.vocabSize()) {
        try {
          text = tok.idToToken(id);
        } catch (IllegalArgumentException gap) {
          text = null;
        }
      }
      if (text == null) {
        // rows of the embedding without a token (vocab_size padded): unused, as llama.cpp's
        // converter writes them
        tokens.add("[PAD" + id + "]");
        scores[id] = -merges;
        types[id] = TOKEN_UNUSED;
        continue;
      }
      tokens.add(text);
      int rank = tok.firstMergeRank(id);
      scores[id] = rank >= 0 ? -rank : -merges;
      if (id == tok.unkId()) types[id] = TOKEN_UNKNOWN;
      else if (tok.isSpecial(id)) types[id] = TOKEN_CONTROL;
      else if (tok.isAddedToken(id)) types[id] = TOKEN_USER_DEFINED;
      else if (tok.byteValue(id) >= 0) types[id] = TOKEN_BYTE;
      else types[id] = TOKEN_NORMAL;
    }
    JsonNode tc = readTokenizerConfig(modelDir);
    w.putString("tokenizer.ggml.model", "llama");
    w.putString("tokenizer.ggml.pre", "default");
    w.putStrings("tokenizer.ggml.tokens", tokens);
    w.putF32s("tokenizer.ggml.scores", scores);
    w.putI32s("tokenizer.ggml.token_type", types);
    if (tok.bosId() >= 0) w.putU32("tokenizer.ggml.bos_token_id", tok.bosId());
    if (tok.eosId() >= 0) w.putU32("tokenizer.ggml.eos_token_id", tok.eosId());
    if (tok.unkId() >= 0) w.putU32("tokenizer.ggml.unknown_token_id", tok.unkId());
    if (tok.padId() >= 0) w.putU32("tokenizer.ggml.padding_token_id", tok.padId());
    w.putBool("tokenizer.ggml.add_bos_token", addBos(tc));
    w.putBool(
        "tokenizer.ggml.add_eos_token", tc != null && tc.path("add_eos_token").asBoolean(false));
    w.putBool("tokenizer.ggml.add_space_prefix", tok.prependsSpace());
    String template = chatTemplateSource(modelDir);
    if (template != null) w.putString("tokenizer.chat_template", template);
    else notes.add(modelDir + " has no chat template: the GGUF file carries none");
  }

  /** add_bos_token of tokenizer_config.json; true when absent, as Llama/Mistral tokenizers do. */
  static boolean addBos(JsonNode tokenizerConfig) {
    return tokenizerConfig == null || tokenizerConfig.path("add_bos_token").asBoolean(true);
  }

  static JsonNode readTokenizerConfig(Path modelDir) {
    Path f = modelDir.resolve("tokenizer_config.json");
    if (!Files.isRegularFile(f)) return null;
    try {
      return JSON.readTree(f.toFile());
    } catch (IOException e) {
      throw new Lora4jException("cannot read " + f + ": " + e.getMessage(), e);
    }
  }

  /** The chat template source (chat_template.jinja or tokenizer_config.json), or null when none. */
  static String chatTemplateSource(Path modelDir) {
    boolean has = Files.isRegularFile(modelDir.resolve("chat_template.jinja"));
    JsonNode tc = readTokenizerConfig(modelDir);
    if (!has
        && (tc == null
            || tc.path("chat_template").isMissingNode()
            || tc.path("chat_template").isNull())) {
      return null;
    }
    return ChatTemplate.fromModelDir(modelDir).source();
  }

  // ---------------------------------------------------------------------------------------------
  // names and layouts
  // ---------------------------------------------------------------------------------------------

  /**
   * The llama.cpp name of a Hugging Face Mistral weight.
   *
   * @param hfName e.g. {@code model.layers.3.self_attn.q_proj.weight}
   * @return e.g. {@code blk.3.attn_q.weight}
   * @throws IllegalArgumentException for a name that is not a Mistral weight
   */
  public static String ggufName(String hfName) {
    switch (hfName) {
      case "model.embed_tokens.weight":
        return "token_embd.weight";
      case "model.norm.weight":
        return "output_norm.weight";
      case "lm_head.weight":
        return "output.weight";
      default:
        break;
    }
    if (hfName.startsWith("model.layers.") && hfName.endsWith(".weight")) {
      int layer = layerOf(hfName);
      String rest =
          hfName.substring(
              ("model.layers." + layer + ".").length(), hfName.length() - ".weight".length());
      if (rest.equals("input_layernorm")) return "blk." + layer + ".attn_norm.weight";
      if (rest.equals("post_attention_layernorm")) return "blk." + layer + ".ffn_norm.weight";
      for (LoraTarget t : LoraTarget.values()) {
        if (rest.equals(t.modulePath())) return "blk." + layer + "." + ggufModule(t) + ".weight";
      }
    }
    throw new IllegalArgumentException("not a Mistral weight: " + hfName);
  }

  /**
   * @return llama.cpp's name of a projection: attn_q, attn_k, attn_v, attn_output, ffn_gate,
   *     ffn_up, ffn_down
   */
  public static String ggufModule(LoraTarget t) {
    return switch (t) {
      case Q_PROJ -> "attn_q";
      case K_PROJ -> "attn_k";
      case V_PROJ -> "attn_v";
      case O_PROJ -> "attn_output";
      case GATE_PROJ -> "ffn_gate";
      case UP_PROJ -> "ffn_up";
      case DOWN_PROJ -> "ffn_down";
    };
  }

  private static LoraTarget targetOf(String hfName) {
    for (LoraTarget t : LoraTarget.values()) {
      if (hfName.startsWith("model.layers.") && hfName.endsWith("." + t.modulePath() + ".weight"))
        return t;
    }
    return null;
  }

  private static int layerOf(String hfName) {
    String rest = hfName.substring("model.layers.".length());
    return Integer.parseInt(rest.substring(0, rest.indexOf('.')));
  }

  /**
   * Reorders the rows of a query or key projection (or of its lora_B) from Hugging Face's RoPE
   * layout to llama.cpp's: within each head of d rows, new row {@code 2i + s} is old row {@code s *
   * d/2 + i} (s = 0, 1; i &lt; d/2).
   *
   * @param w the matrix, row-major {@code [rows, cols]}
   * @param rows heads x head size
   * @param cols row length
   * @param heads number of heads (query heads for q, KV heads for k)
   * @return the permuted copy
   */
  public static float[] permuteRope(float[] w, int rows, int cols, int heads) {
    if (rows % heads != 0 || (rows / heads) % 2 != 0) {
      throw new IllegalArgumentException(
          rows + " rows do not split into " + heads + " heads of even size");
    }
    int d = rows / heads, half = d / 2;
    float[] out = new float[w.length];
    for (int h = 0; h < heads; h++) {
      for (int i = 0; i < half; i++) {
        for (int s = 0; s < 2; s++) {
          System.arraycopy(w, (h * d + s * half + i) * cols, out, (h * d + 2 * i + s) * cols, cols);
        }
      }
    }
    return out;
  }
}
