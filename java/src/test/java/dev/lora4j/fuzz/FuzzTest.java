package dev.lora4j.fuzz;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.lora4j.Fixtures;
import dev.lora4j.Lora4jException;
import dev.lora4j.data.ChatEncoder;
import dev.lora4j.data.DataConfig;
import dev.lora4j.data.DataFormat;
import dev.lora4j.data.ExampleStream;
import dev.lora4j.data.JsonlDataset;
import dev.lora4j.data.TemplateChatEncoder;
import dev.lora4j.data.TokenizedExample;
import dev.lora4j.data.TokenizerTextEncoder;
import dev.lora4j.model.MistralConfig;
import dev.lora4j.model.peft.AdapterConfig;
import dev.lora4j.model.peft.LoraAdapter;
import dev.lora4j.safetensors.Checkpoint;
import dev.lora4j.safetensors.DType;
import dev.lora4j.safetensors.SafetensorsFile;
import dev.lora4j.safetensors.SafetensorsWriter;
import dev.lora4j.safetensors.TensorInfo;
import dev.lora4j.tokenizer.ChatMessage;
import dev.lora4j.tokenizer.ChatTemplate;
import dev.lora4j.tokenizer.Tokenizer;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.function.Predicate;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Seeded mutation fuzzing of every file and text parser, each through its public entry point. See
 * {@link FuzzRunner} for the contract each input is held to and how to reproduce a failure. One
 * summary line is printed per target, and a total at the end.
 */
class FuzzTest {
  private static final long MiB = 1L << 20;
  private static final Predicate<Throwable> NONE = t -> false;
  private static final List<FuzzRunner.Result> RESULTS = new ArrayList<>();
  private static final long START = System.nanoTime();

  @TempDir static Path tmp;

  static List<byte[]> safetensorsSeeds = new ArrayList<>();
  static List<JsonNode> configSeeds = new ArrayList<>();
  static List<JsonNode> adapterConfigSeeds = new ArrayList<>();
  static List<byte[]> adapterWeightSeeds = new ArrayList<>();
  static Path tinyModel;
  static MistralConfig tinyConfig;
  static JsonNode tokenizerJson;
  static JsonNode smallTokenizerJson;
  static String tokenizerConfigText;
  static Tokenizer tokenizer;
  static String realTemplate;

  @BeforeAll
  static void seeds() throws IOException {
    Path hf = Fixtures.resource("hf-reference");
    for (String c : List.of("tiny", "tiny-sliding")) {
      try (Stream<Path> s = Files.walk(hf.resolve(c))) {
        for (Path p : s.filter(p -> p.toString().endsWith(".safetensors")).sorted().toList()) {
          safetensorsSeeds.add(Files.readAllBytes(p));
        }
      }
    }
    for (String c : Fixtures.CASES) {
      configSeeds.add(Mutator.parse(Files.readString(Fixtures.hf(c, "model/config.json"))));
      for (String a : List.of("adapter_init", "adapter_trained")) {
        adapterConfigSeeds.add(
            Mutator.parse(Files.readString(Fixtures.hf(c, a + "/adapter_config.json"))));
      }
    }
    for (String a : List.of("adapter_init", "adapter_trained")) {
      adapterWeightSeeds.add(
          Files.readAllBytes(Fixtures.hf("tiny", a + "/adapter_model.safetensors")));
    }
    try (Stream<Path> s = Files.list(Fixtures.resource("mistral-configs"))) {
      for (Path p : s.sorted().toList()) configSeeds.add(Mutator.parse(Files.readString(p)));
    }
    // generated safetensors files: every dtype, odd shapes, scalars, empty tensors, metadata
    SplittableRandom g = new SplittableRandom(42);
    for (int i = 0; i < 24; i++) {
      SafetensorsWriter w = new SafetensorsWriter();
      if (i % 3 == 0) w.metadata(Map.of("format", "pt", "k" + i, "v"));
      int n = 1 + g.nextInt(4);
      for (int t = 0; t < n; t++) {
        DType dt = DType.values()[g.nextInt(DType.values().length)];
        int rank = g.nextInt(4);
        long[] shape = new long[rank];
        long elems = 1;
        for (int d = 0; d < rank; d++) {
          shape[d] = g.nextInt(i % 5 == 0 ? 1 : 5);
          elems *= shape[d];
        }
        w.add("t" + t + "." + dt, dt, shape, new byte[(int) elems * dt.byteSize()]);
      }
      safetensorsSeeds.add(w.toBytes());
    }
    tinyModel = Fixtures.hf("tiny", "model");
    tinyConfig = MistralConfig.load(tinyModel);
    Path tokDir = Fixtures.resource("tokenizer-mistral-7b-v0.1");
    tokenizer = Tokenizer.fromFile(tokDir.resolve("tokenizer.json"));
    tokenizerJson = Mutator.parse(Files.readString(tokDir.resolve("tokenizer.json")));
    tokenizerConfigText = Files.readString(tokDir.resolve("tokenizer_config.json"));
    realTemplate = Mutator.parse(tokenizerConfigText).get("chat_template").textValue();
    smallTokenizerJson = shrink(tokenizerJson, 700);
  }

  /** The real tokenizer with ids below {@code keep} and the merges among them: a fast seed. */
  static JsonNode shrink(JsonNode full, int keep) {
    ObjectNode root = full.deepCopy();
    ObjectNode model = (ObjectNode) root.get("model");
    ObjectNode vocab = Mutator.F.objectNode();
    full.get("model")
        .get("vocab")
        .properties()
        .forEach(
            e -> {
              if (e.getValue().asInt() < keep) vocab.set(e.getKey(), e.getValue());
            });
    ArrayNode merges = Mutator.F.arrayNode();
    for (JsonNode m : full.get("model").get("merges")) {
      String s = m.isArray() ? m.get(0).asText() + " " + m.get(1).asText() : m.asText();
      int sp = s.indexOf(' ', 1);
      String l = s.substring(0, sp);
      String r = s.substring(sp + 1);
      if (vocab.has(l) && vocab.has(r) && vocab.has(l + r)) merges.add(m);
    }
    model.set("vocab", vocab);
    model.set("merges", merges);
    return root;
  }

  @AfterAll
  static void total() {
    long inputs = 0, valid = 0, rejected = 0, failures = 0;
    for (FuzzRunner.Result r : RESULTS) {
      inputs += r.inputs;
      valid += r.valid;
      rejected += r.rejected;
      failures += r.failures.size();
    }
    System.out.printf(
        "fuzz TOTAL %d targets inputs=%d parsed-valid=%d rejected-typed=%d failures=%d"
            + " time=%.1fs%n",
        RESULTS.size(), inputs, valid, rejected, failures, (System.nanoTime() - START) / 1e9);
  }

  private static void report(FuzzRunner.Result r) {
    synchronized (RESULTS) {
      RESULTS.add(r);
    }
    System.out.println(r.summary());
    for (String f : r.failures) System.out.println("  FAIL " + f);
    assertTrue(
        r.failures.isEmpty(),
        r.name
            + ": "
            + r.failures.size()
            + " failing inputs, first: "
            + (r.failures.isEmpty() ? "" : r.failures.get(0)));
  }

  /** Writes UTF-8; a lone surrogate becomes '?', as any other writer of the file would do. */
  private static void write(Path p, String text) throws IOException {
    Files.write(p, text.getBytes(StandardCharsets.UTF_8));
  }

  private static Path scratch(String target, int index) throws IOException {
    Path d = tmp.resolve(target + "-" + index);
    Files.createDirectories(d);
    return d;
  }

  private static void deleteTree(Path d) {
    try (Stream<Path> s = Files.walk(d)) {
      for (Path p : s.sorted(Comparator.reverseOrder()).toList()) Files.deleteIfExists(p);
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  // ============================================================================================
  // safetensors
  // ============================================================================================

  static final String[] ST_KEYS = {"dtype", "shape", "data_offsets", "__metadata__", "format"};
  static final String[] DTYPES = {
    "F32", "F16", "BF16", "F64", "I8", "U8", "I16", "U16", "I32", "U32", "I64", "U64", "BOOL",
    "F8_E4M3", "f32", "", "FLOAT", "F32 ", "C64"
  };

  /** A mutated safetensors file built from a seed. */
  static byte[] mutateSafetensors(SplittableRandom rng, byte[] seed) {
    ByteBuffer bb = ByteBuffer.wrap(seed).order(ByteOrder.LITTLE_ENDIAN);
    int n = (int) bb.getLong(0);
    byte[] header = java.util.Arrays.copyOfRange(seed, 8, 8 + n);
    byte[] data = java.util.Arrays.copyOfRange(seed, 8 + n, seed.length);
    switch (rng.nextInt(6)) {
      case 0: // byte-level anywhere, mostly in the header
        if (rng.nextInt(4) == 0) return Mutator.mutateBytes(rng, seed, 4);
        return assemble(rng, Mutator.mutateBytes(rng, header, 4), data, false);
      case 1:
        { // truncation inside the length, inside the header, inside the data
          int region = rng.nextInt(3);
          int cut =
              region == 0
                  ? rng.nextInt(8)
                  : region == 1
                      ? 8 + rng.nextInt(n)
                      : data.length == 0 ? seed.length - 1 : 8 + n + rng.nextInt(data.length);
          return java.util.Arrays.copyOf(seed, cut);
        }
      case 2:
        { // header length field
          long[] lens = {
            0,
            1,
            -1,
            Long.MIN_VALUE,
            Long.MAX_VALUE,
            1L << 62,
            1L << 32,
            (1L << 31) - 1,
            1L << 31,
            n - 1,
            n + 1,
            n + 8,
            seed.length,
            seed.length - 8,
            100_000_000,
            100_000_001
          };
          byte[] out = seed.clone();
          ByteBuffer.wrap(out)
              .order(ByteOrder.LITTLE_ENDIAN)
              .putLong(0, lens[rng.nextInt(lens.length)]);
          return out;
        }
      case 3:
        { // tensor entries: dtype, shape, offsets
          ObjectNode root = (ObjectNode) Mutator.parse(new String(header, StandardCharsets.UTF_8));
          Mutator.Doc d = new Mutator.Doc(root);
          List<String> names = new ArrayList<>();
          root.fieldNames()
              .forEachRemaining(
                  k -> {
                    if (!k.equals("__metadata__")) names.add(k);
                  });
          int ops = 1 + rng.nextInt(3);
          for (int k = 0; k < ops && !names.isEmpty(); k++) {
            ObjectNode t = (ObjectNode) root.get(names.get(rng.nextInt(names.size())));
            mutateTensorEntry(rng, d, t, root, names);
          }
          return assemble(
              rng, d.write().getBytes(StandardCharsets.UTF_8), data, rng.nextInt(4) == 0);
        }
      case 4:
        { // generic JSON structure
          Mutator.Doc d =
              Mutator.mutateJson(
                  rng,
                  Mutator.parse(new String(header, StandardCharsets.UTF_8)),
                  1 + rng.nextInt(3),
                  ST_KEYS);
          return assemble(
              rng, d.write().getBytes(StandardCharsets.UTF_8), data, rng.nextInt(4) == 0);
        }
      default:
        { // data section resized
          int newLen =
              rng.nextBoolean() ? rng.nextInt(data.length + 1) : data.length + rng.nextInt(64);
          return assemble(rng, header, java.util.Arrays.copyOf(data, newLen), false);
        }
    }
  }

  static void mutateTensorEntry(
      SplittableRandom rng, Mutator.Doc d, ObjectNode t, ObjectNode root, List<String> names) {
    long[] big = {
      1L << 40, 1L << 32, (1L << 31) + 1, Long.MAX_VALUE, 3_000_000_000L, -1, -(1L << 40), 0
    };
    switch (rng.nextInt(8)) {
      case 0 -> t.put("dtype", DTYPES[rng.nextInt(DTYPES.length)]);
      case 1 -> { // one huge dimension (offsets fixed up to match when possible)
        ArrayNode sh = Mutator.F.arrayNode();
        sh.add(big[rng.nextInt(big.length)]);
        t.set("shape", sh);
      }
      case 2 -> { // product overflows long
        ArrayNode sh = Mutator.F.arrayNode();
        int r = 2 + rng.nextInt(4);
        for (int i = 0; i < r; i++) sh.add(rng.nextBoolean() ? 1L << 31 : 4_294_967_297L);
        if (rng.nextInt(4) == 0) sh.add(0);
        t.set("shape", sh);
      }
      case 3 -> { // offsets: negative, reversed, out of range, huge
        ArrayNode off = (ArrayNode) t.get("data_offsets");
        long b = off.get(0).asLong();
        long e = off.get(1).asLong();
        long[][] opts = {
          {-8, e},
          {e, b},
          {b, e + 1},
          {b + 1, e + 1},
          {b, Long.MAX_VALUE},
          {Long.MAX_VALUE - 1, Long.MAX_VALUE},
          {b, 1L << 40},
          {0, 0},
          {b, b}
        };
        long[] o = opts[rng.nextInt(opts.length)];
        ArrayNode no = Mutator.F.arrayNode();
        no.add(o[0]);
        no.add(o[1]);
        if (rng.nextInt(5) == 0) no.add(0);
        t.set("data_offsets", no);
      }
      case 4 -> { // overlap with another tensor
        ObjectNode other = (ObjectNode) root.get(names.get(rng.nextInt(names.size())));
        t.set("data_offsets", other.get("data_offsets").deepCopy());
        t.set("shape", other.get("shape").deepCopy());
        t.set("dtype", other.get("dtype").deepCopy());
      }
      case 5 -> { // duplicate tensor key
        root.set(names.get(rng.nextInt(names.size())) + "@@DUP@@", t.deepCopy());
      }
      case 6 -> t.set("shape", Mutator.randomValue(rng, d, 1));
      default -> { // 2^40 elements with matching offsets: must be refused before allocating
        ArrayNode sh = Mutator.F.arrayNode();
        sh.add(1L << 20);
        sh.add(1L << 20);
        t.set("shape", sh);
        t.put("dtype", "U8");
        ArrayNode no = Mutator.F.arrayNode();
        no.add(0);
        no.add(1L << 40);
        t.set("data_offsets", no);
      }
    }
  }

  static byte[] assemble(SplittableRandom rng, byte[] header, byte[] data, boolean padOdd) {
    int pad = padOdd ? rng.nextInt(8) : 0;
    byte[] out = new byte[8 + header.length + pad + data.length];
    ByteBuffer.wrap(out).order(ByteOrder.LITTLE_ENDIAN).putLong(0, header.length + pad);
    System.arraycopy(header, 0, out, 8, header.length);
    for (int i = 0; i < pad; i++) out[8 + header.length + i] = ' ';
    System.arraycopy(data, 0, out, 8 + header.length + pad, data.length);
    return out;
  }

  /** Reads every tensor the way callers do, and checks what a valid file promises. */
  static void readAll(SafetensorsFile f, SplittableRandom rng) {
    for (TensorInfo t : f.tensors()) {
      long elems = t.numElements();
      assertEquals(elems * t.dtype().byteSize(), t.byteLength(), t.toString());
      assertTrue(f.dataStart() + t.end() <= f.fileSize(), t.toString());
      ByteBuffer b = f.data(t.name());
      assertEquals(t.byteLength(), b.remaining());
      if (t.dtype().isFloatingPoint()) {
        assertEquals(elems, f.readFloat(t.name()).length);
      } else {
        assertEquals(elems, f.readLong(t.name()).length);
      }
      long off = rng.nextLong(-2, t.byteLength() + 3);
      int len = rng.nextInt(-1, 9);
      try {
        f.data(t.name(), off, len);
      } catch (Lora4jException e) {
        assertTrue(off < 0 || len < 0 || off + len > t.byteLength(), e.getMessage());
      }
    }
  }

  @Test
  void safetensorsFile() {
    report(
        FuzzRunner.run(
            "safetensors-file",
            15_000,
            5_000,
            256 * MiB,
            NONE,
            (rng, i) -> {
              byte[] seed = safetensorsSeeds.get(rng.nextInt(safetensorsSeeds.size()));
              byte[] bytes =
                  rng.nextInt(10) == 0
                      ? Mutator.mutateBytes(rng, seed, 8)
                      : mutateSafetensors(rng, seed);
              Path p = tmp.resolve("st-" + i + ".safetensors");
              Files.write(p, bytes);
              try (SafetensorsFile f = SafetensorsFile.open(p)) {
                readAll(f, rng);
                f.metadata();
              } finally {
                Files.deleteIfExists(p);
              }
            }));
  }

  static final String[] INDEX_KEYS = {"weight_map", "metadata", "total_size"};

  @Test
  void checkpointFolder() throws IOException {
    Path base = tmp.resolve("ck-base");
    Files.createDirectories(base);
    List<String> shards = new ArrayList<>();
    try (Stream<Path> s = Files.list(tinyModel)) {
      for (Path p : s.filter(p -> p.toString().endsWith(".safetensors")).sorted().toList()) {
        Files.copy(p, base.resolve(p.getFileName()));
        shards.add(p.getFileName().toString());
      }
    }
    JsonNode index = Mutator.parse(Files.readString(tinyModel.resolve(Checkpoint.INDEX_FILE)));
    String[] shardNames = {
      "../x.safetensors",
      "/etc/passwd",
      "",
      ".",
      "..",
      "sub/x.safetensors",
      "missing.safetensors",
      "a\u0000b",
      "model.safetensors.index.json",
      "config.json",
      " ",
      "model-00001-of-00004.safetensors/"
    };
    report(
        FuzzRunner.run(
            "checkpoint-folder",
            2_500,
            5_000,
            256 * MiB,
            NONE,
            (rng, i) -> {
              Path dir = scratch("ck", i);
              try {
                for (String s : shards) Files.createLink(dir.resolve(s), base.resolve(s));
                Mutator.Doc d = new Mutator.Doc(index.deepCopy());
                ObjectNode wm = (ObjectNode) d.root.get("weight_map");
                List<String> keys = new ArrayList<>();
                wm.fieldNames().forEachRemaining(keys::add);
                int ops = 1 + rng.nextInt(3);
                for (int k = 0; k < ops; k++) {
                  switch (rng.nextInt(7)) {
                    case 0 ->
                        wm.put(
                            keys.get(rng.nextInt(keys.size())),
                            shards.get(rng.nextInt(shards.size())));
                    case 1 ->
                        wm.put(
                            keys.get(rng.nextInt(keys.size())),
                            shardNames[rng.nextInt(shardNames.length)]);
                    case 2 ->
                        wm.set(keys.get(rng.nextInt(keys.size())), Mutator.randomValue(rng, d, 1));
                    case 3 -> wm.remove(keys.get(rng.nextInt(keys.size())));
                    case 4 ->
                        Files.deleteIfExists(dir.resolve(shards.get(rng.nextInt(shards.size()))));
                    case 5 -> { // a shard replaced by a mutated copy
                      String s = shards.get(rng.nextInt(shards.size()));
                      byte[] b = Files.readAllBytes(base.resolve(s));
                      Files.deleteIfExists(dir.resolve(s));
                      Files.write(dir.resolve(s), mutateSafetensors(rng, b));
                    }
                    default -> Mutator.mutateJsonOnce(rng, d, INDEX_KEYS);
                  }
                }
                String text = d.write();
                if (rng.nextInt(8) == 0) text = Mutator.mutateText(rng, text, 3);
                write(dir.resolve(Checkpoint.INDEX_FILE), text);
                try (Checkpoint c = Checkpoint.open(dir)) {
                  for (String name : c.names()) {
                    TensorInfo t = c.info(name);
                    if (t.dtype().isFloatingPoint())
                      assertEquals(t.numElements(), c.readFloat(name).length);
                  }
                }
              } finally {
                deleteTree(dir);
              }
            }));
  }

  // ============================================================================================
  // config.json, adapter_config.json, adapter folders
  // ============================================================================================

  static final String[] CONFIG_KEYS = {
    "model_type",
    "vocab_size",
    "hidden_size",
    "intermediate_size",
    "num_hidden_layers",
    "num_attention_heads",
    "num_key_value_heads",
    "head_dim",
    "max_position_embeddings",
    "rms_norm_eps",
    "rope_theta",
    "rope_parameters",
    "rope_type",
    "rope_scaling",
    "sliding_window",
    "tie_word_embeddings",
    "bos_token_id",
    "eos_token_id",
    "hidden_act"
  };

  static String mutatedJsonText(SplittableRandom rng, JsonNode seed, String[] keys) {
    int mode = rng.nextInt(10);
    if (mode < 7) {
      String s = Mutator.mutateJson(rng, seed, 1 + rng.nextInt(4), keys).write();
      return mode == 0 ? Mutator.mutateText(rng, s, 2) : s;
    }
    return Mutator.mutateText(rng, seed.toString(), 6);
  }

  @Test
  void mistralConfig() {
    report(
        FuzzRunner.run(
            "config.json",
            25_000,
            5_000,
            256 * MiB,
            NONE,
            (rng, i) -> {
              String text =
                  mutatedJsonText(
                      rng, configSeeds.get(rng.nextInt(configSeeds.size())), CONFIG_KEYS);
              MistralConfig c = MistralConfig.parse(text, "config.json#" + i);
              assertTrue(
                  c.vocabSize() > 0
                      && c.hiddenSize() > 0
                      && c.headDim() > 0
                      && c.numHiddenLayers() > 0);
              assertTrue(c.qDim() > 0 && c.kvDim() > 0, "q/kv width overflows: " + c);
              assertTrue(Double.isFinite(c.ropeTheta()) && c.ropeTheta() > 0 && c.rmsNormEps() > 0);
              assertEquals(c, MistralConfig.parse(c.toJson(), "round trip"));
            }));
  }

  static final String[] ADAPTER_KEYS = {
    "r",
    "lora_alpha",
    "lora_dropout",
    "target_modules",
    "use_rslora",
    "bias",
    "peft_type",
    "task_type",
    "use_dora",
    "fan_in_fan_out",
    "lora_bias",
    "rank_pattern",
    "alpha_pattern",
    "modules_to_save",
    "init_lora_weights",
    "inference_mode",
    "base_model_name_or_path",
    "revision",
    "peft_version",
    "layers_to_transform"
  };

  @Test
  void adapterConfig() {
    report(
        FuzzRunner.run(
            "adapter_config.json",
            15_000,
            5_000,
            256 * MiB,
            NONE,
            (rng, i) -> {
              String text =
                  mutatedJsonText(
                      rng,
                      adapterConfigSeeds.get(rng.nextInt(adapterConfigSeeds.size())),
                      ADAPTER_KEYS);
              AdapterConfig c = AdapterConfig.parse(text, "adapter_config.json#" + i);
              assertTrue(c.r() > 0 && c.loraAlpha() > 0 && Double.isFinite(c.scale()));
              assertEquals(c.targets().size(), c.targetModules().size());
              assertEquals(c, AdapterConfig.parse(c.toJson(), "round trip"));
            }));
  }

  @Test
  void adapterFolder() {
    report(
        FuzzRunner.run(
            "adapter-folder",
            2_500,
            5_000,
            256 * MiB,
            NONE,
            (rng, i) -> {
              Path dir = scratch("ad", i);
              try {
                JsonNode cfg = adapterConfigSeeds.get(rng.nextInt(2)); // the tiny adapters
                byte[] w = adapterWeightSeeds.get(rng.nextInt(adapterWeightSeeds.size()));
                int what = rng.nextInt(5);
                String cfgText =
                    what == 0 || what == 2
                        ? mutatedJsonText(rng, cfg, ADAPTER_KEYS)
                        : cfg.toString();
                byte[] weights = what >= 1 ? mutateSafetensors(rng, w) : w;
                if (rng.nextInt(20) > 0) write(dir.resolve(AdapterConfig.FILE_NAME), cfgText);
                if (rng.nextInt(20) > 0)
                  Files.write(dir.resolve(LoraAdapter.WEIGHTS_FILE), weights);
                LoraAdapter a = LoraAdapter.read(dir);
                for (LoraAdapter.Weight x : a.weights().values()) {
                  assertEquals((long) x.rows() * x.cols(), x.values().length);
                }
                a.validate(tinyConfig);
              } finally {
                deleteTree(dir);
              }
            }));
  }

  // ============================================================================================
  // tokenizer.json, encode/decode, chat templates
  // ============================================================================================

  static final String[] TOKENIZER_KEYS = {
    "type",
    "vocab",
    "merges",
    "added_tokens",
    "normalizer",
    "decoder",
    "pre_tokenizer",
    "model",
    "id",
    "content",
    "special",
    "lstrip",
    "rstrip",
    "single_word",
    "byte_fallback",
    "fuse_unk",
    "unk_token",
    "dropout",
    "ignore_merges",
    "pattern",
    "String",
    "Regex",
    "prepend_scheme",
    "replacement",
    "start",
    "stop",
    "normalizers",
    "decoders",
    "pretokenizers",
    "prepend",
    "split",
    "add_prefix_space",
    "continuing_subword_prefix",
    "end_of_word_suffix",
    "post_processor"
  };
  static final String[] TYPE_NAMES = {
    "Sequence",
    "Replace",
    "Prepend",
    "Strip",
    "Fuse",
    "ByteFallback",
    "Metaspace",
    "BPE",
    "WordPiece",
    "NFC",
    "ByteLevel",
    "",
    "Split"
  };

  /** Structure-aware mutation of a tokenizer.json tree, aimed at its components. */
  static String mutateTokenizer(SplittableRandom rng, JsonNode seed) {
    if (rng.nextInt(8) == 0) return Mutator.mutateText(rng, seed.toString(), 6);
    Mutator.Doc d = new Mutator.Doc(seed.deepCopy());
    ObjectNode root = (ObjectNode) d.root;
    ObjectNode model = (ObjectNode) root.get("model");
    int ops = 1 + rng.nextInt(3);
    for (int k = 0; k < ops; k++) {
      switch (rng.nextInt(10)) {
        case 0 -> { // vocab entry: id changed, removed, or added
          ObjectNode v = (ObjectNode) model.get("vocab");
          if (v == null || v.isEmpty()) break;
          List<String> names = new ArrayList<>();
          v.fieldNames().forEachRemaining(names::add);
          String key = names.get(rng.nextInt(names.size()));
          int[] ids = {-1, -2_000_000_000, Integer.MAX_VALUE, 1 << 30, 5_000_000, v.size(), 0, 3};
          switch (rng.nextInt(4)) {
            case 0 -> v.remove(key);
            case 1 -> v.put(key, ids[rng.nextInt(ids.length)]);
            case 2 -> v.set(key, Mutator.randomValue(rng, d, 1));
            default -> v.put(Mutator.randomString(rng, 3), ids[rng.nextInt(ids.length)]);
          }
        }
        case 1 -> { // merges
          JsonNode mn = model.get("merges");
          if (!(mn instanceof ArrayNode m) || m.isEmpty()) break;
          int at = rng.nextInt(m.size());
          String[] bad = {"", " ", "a", "a b c", "\u2581 ", " \u2581", "<s> </s>", "zz qq"};
          switch (rng.nextInt(5)) {
            case 0 -> m.remove(at);
            case 1 -> m.set(at, Mutator.F.textNode(bad[rng.nextInt(bad.length)]));
            case 2 -> {
              ArrayNode pair = Mutator.F.arrayNode();
              int n = rng.nextInt(4);
              for (int j = 0; j < n; j++) pair.add(Mutator.randomValue(rng, d, 0));
              m.set(at, pair);
            }
            case 3 -> m.set(at, Mutator.randomValue(rng, d, 1));
            default -> m.add(m.get(rng.nextInt(m.size())).deepCopy());
          }
        }
        case 2 -> { // added tokens
          JsonNode an = root.get("added_tokens");
          if (!(an instanceof ArrayNode a) || a.isEmpty()) break;
          ObjectNode t = (ObjectNode) a.get(rng.nextInt(a.size())).deepCopy();
          int[] ids = {-1, Integer.MAX_VALUE, 100_000_000, 40_000, 2};
          switch (rng.nextInt(4)) {
            case 0 -> t.put("id", ids[rng.nextInt(ids.length)]);
            case 1 -> t.put("content", rng.nextBoolean() ? "" : Mutator.randomString(rng, 5));
            case 2 -> t.set("id", Mutator.randomValue(rng, d, 0));
            default ->
                t.put(
                    new String[] {"lstrip", "rstrip", "single_word", "special"}[rng.nextInt(4)],
                    true);
          }
          if (rng.nextBoolean()) a.add(t);
          else a.set(rng.nextInt(a.size()), t);
        }
        case 3, 4 -> { // component type swapped or field changed
          String comp =
              new String[] {"normalizer", "decoder", "pre_tokenizer", "model"}[rng.nextInt(4)];
          JsonNode c = root.get(comp);
          List<ObjectNode> objs = new ArrayList<>();
          collectObjects(c, objs);
          if (objs.isEmpty()) {
            ObjectNode o = Mutator.F.objectNode();
            o.put("type", TYPE_NAMES[rng.nextInt(TYPE_NAMES.length)]);
            root.set(comp, o);
            break;
          }
          ObjectNode o = objs.get(rng.nextInt(objs.size()));
          if (rng.nextBoolean()) {
            o.put("type", TYPE_NAMES[rng.nextInt(TYPE_NAMES.length)]);
          } else {
            String key = TOKENIZER_KEYS[rng.nextInt(TOKENIZER_KEYS.length)];
            JsonNode[] vals = {
              Mutator.F.textNode(""),
              Mutator.F.textNode("\u2581"),
              Mutator.F.numberNode(-1),
              Mutator.F.numberNode(Integer.MAX_VALUE),
              Mutator.F.textNode("first"),
              Mutator.F.textNode("sometimes"),
              Mutator.F.nullNode(),
              Mutator.F.objectNode().put("String", ""),
              Mutator.F.objectNode().put("Regex", "\\s"),
              Mutator.F.numberNode(0.5),
              Mutator.F.booleanNode(false)
            };
            o.set(
                key,
                rng.nextInt(4) == 0
                    ? Mutator.randomValue(rng, d, 1)
                    : vals[rng.nextInt(vals.length)]);
          }
        }
        case 5 -> root.remove(TOKENIZER_KEYS[rng.nextInt(TOKENIZER_KEYS.length)]);
        case 6 ->
            model.remove(
                new String[] {"vocab", "merges", "unk_token", "byte_fallback", "type"}
                    [rng.nextInt(5)]);
        default -> Mutator.mutateJsonOnce(rng, d, TOKENIZER_KEYS);
      }
    }
    return d.write();
  }

  static void collectObjects(JsonNode n, List<ObjectNode> out) {
    if (n == null) return;
    if (n instanceof ObjectNode o) {
      if (n.has("type")) out.add(o);
      for (String k : List.of("normalizers", "decoders", "pretokenizers")) {
        for (JsonNode c : n.path(k)) collectObjects(c, out);
      }
    }
  }

  static final String[] TOKENIZER_CONFIG_KEYS = {
    "bos_token", "eos_token", "unk_token", "pad_token", "content", "chat_template"
  };

  static void tokenizerFile(SplittableRandom rng, int i, JsonNode seed) throws Exception {
    Path dir = scratch("tok", i);
    try {
      write(dir.resolve("tokenizer.json"), mutateTokenizer(rng, seed));
      int cfg = rng.nextInt(4);
      if (cfg == 1) Files.writeString(dir.resolve("tokenizer_config.json"), tokenizerConfigText);
      if (cfg == 2) {
        write(
            dir.resolve("tokenizer_config.json"),
            mutatedJsonText(rng, Mutator.parse(tokenizerConfigText), TOKENIZER_CONFIG_KEYS));
      }
      Tokenizer t = Tokenizer.fromFile(dir.resolve("tokenizer.json"));
      // a tokenizer that loads must encode and decode without crashing
      for (int k = 0; k < 4; k++) {
        String s = Mutator.randomString(rng, 20);
        try {
          int[] ids = t.encode(s, false);
          for (int id : ids) assertTrue(id >= 0 && id < t.vocabSize(), "id " + id);
          t.decode(ids, rng.nextBoolean());
          t.encodeWithSpecialTokens(s, false);
        } catch (Lora4jException e) {
          assertTrue(!e.getMessage().isBlank());
        }
      }
    } finally {
      deleteTree(dir);
    }
  }

  @Test
  void tokenizerJsonSmall() {
    report(
        FuzzRunner.run(
            "tokenizer.json-small",
            2_500,
            10_000,
            256 * MiB,
            NONE,
            (rng, i) -> tokenizerFile(rng, i, smallTokenizerJson)));
  }

  @Test
  void tokenizerJsonFull() {
    report(
        FuzzRunner.run(
            "tokenizer.json-full",
            60,
            30_000,
            2048 * MiB,
            NONE,
            (rng, i) -> tokenizerFile(rng, i, tokenizerJson)));
  }

  static String randomText(SplittableRandom rng) {
    StringBuilder sb = new StringBuilder();
    switch (rng.nextInt(6)) {
      case 0 -> { // a very long run
        String unit =
            new String[] {" ", "a", "\u2581", "\n", "<s>", "\ud83d\ude00", "\ud800", "ab", "\u0000"}
                [rng.nextInt(9)];
        sb.append(unit.repeat(1 + rng.nextInt(20_000)));
      }
      case 1 -> sb.append(Mutator.randomString(rng, 2000));
      default -> sb.append(Mutator.randomString(rng, 60));
    }
    return sb.toString();
  }

  static boolean wellFormed(String s) {
    for (int i = 0; i < s.length(); i++) {
      char c = s.charAt(i);
      if (Character.isHighSurrogate(c)) {
        if (i + 1 >= s.length() || !Character.isLowSurrogate(s.charAt(i + 1))) return false;
        i++;
      } else if (Character.isLowSurrogate(c) || c == '\u2581') {
        return false;
      }
    }
    return true;
  }

  @Test
  void tokenizerEncodeDecode() {
    Predicate<Throwable> idOutside =
        t ->
            t instanceof IllegalArgumentException
                && t.getMessage().contains("outside the vocabulary");
    report(
        FuzzRunner.run(
            "tokenizer-encode-decode",
            20_000,
            5_000,
            256 * MiB,
            idOutside,
            (rng, i) -> {
              if (rng.nextInt(5) == 0) { // decode of random ids, some outside the vocabulary
                int[] ids = new int[rng.nextInt(50)];
                for (int k = 0; k < ids.length; k++) {
                  ids[k] =
                      rng.nextInt(20) == 0 ? rng.nextInt() : rng.nextInt(tokenizer.vocabSize());
                }
                tokenizer.decode(ids, rng.nextBoolean());
                return;
              }
              String s = randomText(rng);
              int[] ids =
                  rng.nextBoolean()
                      ? tokenizer.encode(s, rng.nextBoolean())
                      : tokenizer.encodeWithSpecialTokens(s, rng.nextBoolean());
              for (int id : ids) assertTrue(id >= 0 && id < tokenizer.vocabSize());
              int[] literal = tokenizer.encode(s, false);
              if (wellFormed(s) && !s.isEmpty()) {
                assertEquals(s, tokenizer.decode(literal, false), "decode(encode(s)) differs");
              }
            }));
  }

  static final String[] TEMPLATES = {
    "",
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
        + "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}",
    "{{ bos_token }}{% for message in messages %}{% if message.role == 'system' %}{% set sys = "
        + "message.content %}{% elif message.role == 'user' %}[INST] {{ (sys ~ '\\n\\n' if sys is "
        + "defined else '') + message.content | trim }} [/INST]{% else %}{{ message.content }}"
        + "{{ eos_token }}{% endif %}{% endfor %}",
    "{% set ns = namespace(n=0) %}{% for m in messages|reverse %}{% set ns.n = ns.n + 1 %}"
        + "{{ loop.index }}:{{ m.content|length }}/{{ m.role|upper }}{{ messages|tojson }}"
        + "{% if loop.last %}{{ ns.n }}{% endif %}{% endfor %}{{ raise_exception('no') if "
        + "messages|length > 5 else '' }}",
  };
  static final String[] JINJA_FRAGMENTS = {
    "{{",
    "}}",
    "{%",
    "%}",
    "{#",
    "#}",
    "{%-",
    "-%}",
    "{{ messages[0]['content'] }}",
    "{% for x in range(10) %}{{ x }}{% endfor %}",
    "{% for x in range(99999999999) %}{% endfor %}",
    "{{ range(2147483647)|length }}",
    "{{ 'ab' * 999999999 }}",
    "{{ [1] * 999999999 }}",
    "{{ 2 ** 99999 }}",
    "{{ 10 ** 400 }}",
    "{{ 9223372036854775807 + 1 }}",
    "{{ -9223372036854775808 // -1 }}",
    "{{ 1 / 0 }}",
    "{{ 1 % 0 }}",
    "{{ 1 // 0 }}",
    "(((((((((((((((((((((",
    ")))))))",
    "{% macro f(n) %}{{ f(n) }}{% endmacro %}{{ f(1) }}",
    "{% if true %}",
    "{% endif %}",
    "{% endfor %}",
    "{% else %}",
    "[[[[[[[[[[[[[[[[",
    "]]]]",
    "{{ messages[-99] }}",
    "{{ messages[::-1] }}",
    "{{ messages[::0] }}",
    "{{ 'x'|replace('', 'yy') }}",
    "{{ messages|tojson(indent=2) }}",
    "{{ loop.index }}",
    "{{ undefined.attr.attr }}",
    "{{ raise_exception('stop') }}",
    "{% set x = x %}",
    "{{ 'abc'[5] }}",
    "{{ 'abc'[-99:99] }}",
    "{{ none.x }}",
    "{{ {}['k'] }}",
    "{{ ''.join(['a']) }}",
    "{{ 'a,b'.split(',') }}",
    "{{ '%s' % 1 }}",
    "{{ 1.5|int }}",
    "{{ 'x'|int }}",
    "{{ '99999999999999999999'|int }}",
    "{{ '1e999'|float }}",
    "{{ messages|first }}",
    "{{ []|first }}",
    "{{ []|last }}",
    "{% generation %}",
    "{% endgeneration %}",
    "{% raw %}",
    "{% endraw %}",
    "{% break %}",
    "{{ strftime_now('%Y') }}",
    "{{ x if y }}",
    "'",
    "\"",
    "\\",
    "\u0000",
    "|",
    ".",
    "[",
    "]",
    "not not not not",
    "{{ 1 if 2 else 3 if 4 else 5 }}",
    "{{ (1, 2)[1] }}",
    "{% set a, b = 1 %}",
  };

  static String mutateTemplate(SplittableRandom rng) {
    String t = rng.nextInt(3) == 0 ? realTemplate : TEMPLATES[rng.nextInt(TEMPLATES.length)];
    int ops = 1 + rng.nextInt(4);
    for (int k = 0; k < ops; k++) {
      int at = t.isEmpty() ? 0 : rng.nextInt(t.length() + 1);
      switch (rng.nextInt(6)) {
        case 0, 1, 2 -> {
          String f = JINJA_FRAGMENTS[rng.nextInt(JINJA_FRAGMENTS.length)];
          if (rng.nextInt(10) == 0) f = f.repeat(1 + rng.nextInt(3000)); // deep nesting / long runs
          t = t.substring(0, at) + f + t.substring(at);
        }
        case 3 -> {
          if (!t.isEmpty()) {
            int len = rng.nextInt(Math.min(20, t.length() - at) + 1);
            t = t.substring(0, at) + t.substring(at + len);
          }
        }
        default -> t = Mutator.mutateText(rng, t, 2);
      }
    }
    return t;
  }

  static List<ChatMessage> randomMessages(SplittableRandom rng) {
    String[] roles = {"user", "assistant", "system", "user", "assistant", "tool", "", "USER"};
    List<ChatMessage> out = new ArrayList<>();
    int n = rng.nextInt(7);
    for (int k = 0; k < n; k++) {
      String role =
          rng.nextInt(4) == 0
              ? roles[rng.nextInt(roles.length)]
              : k % 2 == 0 ? "user" : "assistant";
      out.add(
          new ChatMessage(
              role, rng.nextInt(10) == 0 ? randomText(rng) : Mutator.randomString(rng, 40)));
    }
    return out;
  }

  @Test
  void chatTemplate() {
    report(
        FuzzRunner.run(
            "chat-template",
            15_000,
            5_000,
            256 * MiB,
            NONE,
            (rng, i) -> {
              String src = mutateTemplate(rng);
              ChatTemplate t =
                  ChatTemplate.of(
                      src, rng.nextInt(5) == 0 ? null : "<s>", rng.nextInt(5) == 0 ? null : "</s>");
              List<ChatMessage> msgs = randomMessages(rng);
              boolean gen = rng.nextBoolean();
              switch (rng.nextInt(3)) {
                case 0 -> t.render(msgs, gen);
                case 1 -> t.renderString(msgs, gen);
                default -> t.encode(msgs, gen, tokenizer);
              }
            }));
  }

  // ============================================================================================
  // JSONL datasets
  // ============================================================================================

  static final String[] LINE_KEYS = {
    "text",
    "prompt",
    "completion",
    "instruction",
    "input",
    "output",
    "messages",
    "role",
    "content",
    "input_ids",
    "labels"
  };

  static String randomLine(SplittableRandom rng) {
    ObjectNode o = Mutator.F.objectNode();
    switch (rng.nextInt(5)) {
      case 0 -> o.put("text", Mutator.randomString(rng, 80));
      case 1 ->
          o.put("prompt", Mutator.randomString(rng, 40))
              .put("completion", Mutator.randomString(rng, 40));
      case 2 -> {
        o.put("instruction", Mutator.randomString(rng, 40))
            .put("output", Mutator.randomString(rng, 40));
        if (rng.nextBoolean()) o.put("input", Mutator.randomString(rng, 20));
      }
      case 3 -> {
        ArrayNode m = o.putArray("messages");
        int n = 1 + rng.nextInt(5);
        for (int k = 0; k < n; k++) {
          m.addObject()
              .put("role", rng.nextInt(6) == 0 ? "system" : k % 2 == 0 ? "user" : "assistant")
              .put("content", Mutator.randomString(rng, 30));
        }
      }
      default -> {
        ArrayNode ids = o.putArray("input_ids");
        ArrayNode labels = Mutator.F.arrayNode();
        int n = rng.nextInt(40);
        for (int k = 0; k < n; k++) {
          int id = rng.nextInt(32000);
          ids.add(id);
          labels.add(rng.nextInt(4) == 0 ? -100 : id);
        }
        if (rng.nextBoolean()) o.set("labels", labels);
      }
    }
    int mode = rng.nextInt(10);
    if (mode < 4) return o.toString();
    if (mode < 8) return Mutator.mutateJson(rng, o, 1 + rng.nextInt(3), LINE_KEYS).write();
    return Mutator.mutateText(rng, o.toString(), 4);
  }

  @Test
  void jsonlDataset() {
    TokenizerTextEncoder text = new TokenizerTextEncoder(tokenizer);
    ChatEncoder chat =
        new TemplateChatEncoder(ChatTemplate.of(realTemplate, "<s>", "</s>"), tokenizer);
    DataFormat[] formats = DataFormat.values();
    report(
        FuzzRunner.run(
            "jsonl-dataset",
            5_000,
            10_000,
            256 * MiB,
            NONE,
            (rng, i) -> {
              StringBuilder sb = new StringBuilder();
              int lines = 1 + rng.nextInt(12);
              for (int k = 0; k < lines; k++) {
                sb.append(rng.nextInt(30) == 0 ? "" : randomLine(rng).replace('\n', ' '));
                sb.append(rng.nextInt(10) == 0 ? "\r\n" : "\n");
              }
              Path p = tmp.resolve("data-" + i + ".jsonl");
              write(
                  p,
                  rng.nextInt(20) == 0 ? Mutator.mutateText(rng, sb.toString(), 3) : sb.toString());
              try {
                DataConfig cfg =
                    DataConfig.builder()
                        .format(rng.nextBoolean() ? null : formats[rng.nextInt(formats.length)])
                        .skipInvalid(rng.nextBoolean())
                        .completionsOnly(rng.nextBoolean())
                        .maxSeqLength(2 + rng.nextInt(rng.nextBoolean() ? 16 : 512))
                        .dropOverlong(rng.nextBoolean())
                        .build();
                JsonlDataset ds =
                    JsonlDataset.open(p, text, rng.nextInt(5) == 0 ? null : chat, cfg);
                try (ExampleStream s = ds.examplesInFileOrder(null)) {
                  while (s.hasNext()) {
                    TokenizedExample e = s.next();
                    assertTrue(e.length() <= cfg.maxSeqLength(), "longer than maxSeqLength");
                    for (int id : e.inputIds())
                      assertTrue(id >= 0 && id < tokenizer.vocabSize(), "id " + id);
                  }
                }
              } finally {
                Files.deleteIfExists(p);
              }
            }));
  }
}
