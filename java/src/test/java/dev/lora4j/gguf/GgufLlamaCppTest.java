package dev.lora4j.gguf;

import static org.junit.jupiter.api.Assertions.*;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.lora4j.Batch;
import dev.lora4j.Dataset;
import dev.lora4j.Device;
import dev.lora4j.LoraConfig;
import dev.lora4j.LoraTrainer;
import dev.lora4j.MistralModel;
import dev.lora4j.Schedule;
import dev.lora4j.TrainingConfig;
import dev.lora4j.TrainingResult;
import dev.lora4j.tokenizer.ChatMessage;
import dev.lora4j.tokenizer.ChatTemplate;
import dev.lora4j.tokenizer.Tokenizer;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.FloatBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Locale;
import java.util.Set;
import java.util.SplittableRandom;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;
import org.junit.jupiter.api.io.TempDir;

/**
 * The GGUF exports checked by llama.cpp itself: the shipped tiny model is trained for a few steps,
 * exported as merged f16 and q8_0 GGUF files, as a base f16 GGUF and as a LoRA adapter GGUF, and
 * the three setups (merged f16, merged q8_0, base + adapter) are run in llama.cpp through
 * node-llama-cpp (scripts/llamacpp/check.mjs, prebuilt llama.cpp for the CPU). Compared with lora4j
 * (the base model with the trained adapter, CPU engine): the tokenization of 200 strings; the
 * next-token distributions at every position of 20 chat prompts (f16 and base + adapter: the same
 * top-1 everywhere, every probability within 1e-2; q8_0: the same top-1 at 95% of positions or
 * more); greedy generation from the chat prompts, which must stop at EOS where lora4j's does.
 *
 * <p>node-llama-cpp is installed by scripts/ensure-tools.sh (which .ci/run sources); without it
 * this test fails, saying how to install it: it never skips.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class GgufLlamaCppTest {
  static final Path MODEL = Path.of("../examples/models/tiny-mistral");
  static final Path SAMPLE = Path.of("../examples/data/sample-chat.jsonl");
  static final String NODE_LLAMA_CPP_VERSION = "3.21.1";
  static final ObjectMapper JSON = new ObjectMapper();
  static final int MAX_NEW = 48;

  @TempDir static Path tmp;
  Path adapter;
  Tokenizer tokenizer;
  List<String> strings;
  List<int[]> prompts;
  float[][] reference; // per prompt: [positions * vocab] probabilities of lora4j
  List<int[]> generations = new ArrayList<>();
  JsonNode result;
  int vocab;

  /** The llama.cpp check folder: scripts/llamacpp, with node-llama-cpp installed. */
  static Path checkDir() {
    Path dir = Path.of("..", "scripts", "llamacpp").toAbsolutePath().normalize();
    Path pkg = dir.resolve("node_modules/node-llama-cpp/package.json");
    String how =
        " Install it with `scripts/ensure-tools.sh` (or `npm ci --omit=optional --ignore-scripts`"
            + " in scripts/llamacpp); this test checks the GGUF export in llama.cpp and does not"
            + " skip.";
    if (!Files.isRegularFile(pkg)) {
      fail("node-llama-cpp " + NODE_LLAMA_CPP_VERSION + " is not installed in " + dir + "." + how);
    }
    try {
      String v = JSON.readTree(pkg.toFile()).path("version").asText();
      if (!v.equals(NODE_LLAMA_CPP_VERSION)) {
        fail(
            "node-llama-cpp "
                + v
                + " is installed in "
                + dir
                + ", the test needs "
                + NODE_LLAMA_CPP_VERSION
                + "."
                + how);
      }
    } catch (IOException e) {
      fail("cannot read " + pkg + ": " + e);
    }
    return dir;
  }

  @BeforeAll
  void trainExportAndRun() throws Exception {
    Path check = checkDir();
    long t0 = System.nanoTime();
    tokenizer = Tokenizer.fromModelDir(MODEL);
    ChatTemplate template = ChatTemplate.fromModelDir(MODEL);
    try (MistralModel model = MistralModel.load(MODEL, Device.cpu())) {
      vocab = model.config().vocabSize();
      TrainingConfig cfg =
          TrainingConfig.builder()
              .outputDir(tmp.resolve("run"))
              .maxSteps(60)
              .batchSize(8)
              .learningRate(5e-3)
              .schedule(Schedule.cosine().warmupSteps(5))
              .maxSeqLength(256)
              .lora(LoraConfig.builder().rank(8).alpha(16).allLinear().build())
              .trainOnCompletionsOnly(true)
              .seed(7)
              .build();
      TrainingResult r = LoraTrainer.fit(model, Dataset.jsonl(SAMPLE), cfg, List.of());
      adapter = r.adapterDir();
      System.out.printf(
          Locale.ROOT,
          "trained %d steps in %.1fs, loss %.3f -> %.3f%n",
          r.steps(),
          r.seconds(),
          r.firstLoss(),
          r.finalLoss());

      strings = testStrings();
      prompts = new ArrayList<>();
      List<String> questions = questions();
      for (String q : questions) {
        prompts.add(template.encode(List.of(ChatMessage.user(q)), true, tokenizer).ids());
      }
      reference = new float[prompts.size()][];
      for (int i = 0; i < prompts.size(); i++) {
        int[] p = prompts.get(i);
        float[] logits = model.logits(Batch.of(p));
        reference[i] = softmaxRows(logits, p.length, vocab);
        int[] gen = model.generateGreedy(p, MAX_NEW, tokenizer.eosId());
        generations.add(gen);
      }
    }
    long t1 = System.nanoTime();
    GgufExport.writeModel(
        MODEL, adapter, tmp.resolve("merged-f16.gguf"), GgufExport.Type.F16, false);
    GgufExport.writeModel(
        MODEL, adapter, tmp.resolve("merged-q8_0.gguf"), GgufExport.Type.Q8_0, false);
    GgufExport.writeModel(MODEL, null, tmp.resolve("base-f16.gguf"), GgufExport.Type.F16, false);
    GgufExport.writeAdapter(
        MODEL, adapter, tmp.resolve("adapter.gguf"), GgufExport.Type.F32, false);

    ObjectNode in = JSON.createObjectNode();
    in.put("out", tmp.toString());
    ArrayNode models = in.putArray("models");
    models
        .addObject()
        .put("name", "f16")
        .put("gguf", tmp.resolve("merged-f16.gguf").toString())
        .putNull("lora");
    models
        .addObject()
        .put("name", "q8_0")
        .put("gguf", tmp.resolve("merged-q8_0.gguf").toString())
        .putNull("lora");
    models
        .addObject()
        .put("name", "lora")
        .put("gguf", tmp.resolve("base-f16.gguf").toString())
        .put("lora", tmp.resolve("adapter.gguf").toString());
    ArrayNode ss = in.putArray("strings");
    strings.forEach(ss::add);
    ArrayNode ps = in.putArray("prompts");
    for (int[] p : prompts) ps.add(ids(p));
    ArrayNode cs = in.putArray("chats");
    for (int[] p : prompts) cs.add(ids(p));
    in.put("maxNew", MAX_NEW);
    Path inFile = tmp.resolve("input.json");
    JSON.writeValue(inFile.toFile(), in);

    long t2 = System.nanoTime();
    ProcessBuilder pb =
        new ProcessBuilder("node", check.resolve("check.mjs").toString(), inFile.toString())
            .directory(check.toFile())
            .redirectErrorStream(true)
            .redirectOutput(tmp.resolve("node.log").toFile());
    Process proc;
    try {
      proc = pb.start();
    } catch (IOException e) {
      throw new AssertionError(
          "cannot run node (Node.js 20 or later is needed for the llama.cpp check;"
              + " scripts/ensure-tools.sh installs it): "
              + e.getMessage(),
          e);
    }
    if (!proc.waitFor(300, TimeUnit.SECONDS)) {
      proc.destroyForcibly();
      fail("llama.cpp check did not finish in 300 s: " + Files.readString(tmp.resolve("node.log")));
    }
    String log = Files.readString(tmp.resolve("node.log"));
    assertEquals(0, proc.exitValue(), "llama.cpp check failed:\n" + log);
    result = JSON.readTree(tmp.resolve("result.json").toFile());
    System.out.printf(
        Locale.ROOT,
        "lora4j: training and references %.1fs, exports %.1fs, llama.cpp (%s) %.1fs%n",
        (t1 - t0) / 1e9,
        (t2 - t1) / 1e9,
        result.path("llamaCpp").path("release").asText(),
        (System.nanoTime() - t2) / 1e9);
  }

  static ArrayNode ids(int[] p) {
    ArrayNode a = JSON.createArrayNode();
    for (int t : p) a.add(t);
    return a;
  }

  static float[] softmaxRows(float[] logits, int rows, int vocab) {
    float[] out = new float[rows * vocab];
    for (int r = 0; r < rows; r++) {
      double max = Double.NEGATIVE_INFINITY;
      for (int v = 0; v < vocab; v++) max = Math.max(max, logits[r * vocab + v]);
      double sum = 0;
      for (int v = 0; v < vocab; v++) sum += Math.exp(logits[r * vocab + v] - max);
      for (int v = 0; v < vocab; v++)
        out[r * vocab + v] = (float) (Math.exp(logits[r * vocab + v] - max) / sum);
    }
    return out;
  }

  /** The first user question of each conversation of the sample, 20 distinct ones. */
  static List<String> questions() throws IOException {
    Set<String> out = new LinkedHashSet<>();
    for (String line : Files.readAllLines(SAMPLE, StandardCharsets.UTF_8)) {
      String q = JSON.readTree(line).path("messages").get(0).path("content").asText();
      out.add(q);
      if (out.size() == 20) break;
    }
    return new ArrayList<>(out);
  }

  /** 200 strings: edge cases, texts of the sample, and seeded random mixtures of scripts. */
  static List<String> testStrings() throws IOException {
    List<String> s =
        new ArrayList<>(
            List.of(
                "Hello world",
                "hello",
                " leading space",
                "  two leading spaces",
                "trailing space ",
                "multiple   inner    spaces",
                "\n",
                "line one\nline two",
                "tab\tseparated",
                "\r\nwindows",
                "<s>",
                "</s>",
                "<unk>",
                "[INST] literal [/INST]",
                "<s>[INST] hi [/INST]</s>",
                "<0x0A>",
                "\u2581already\u2581metaspace",
                "12345",
                "3.14159",
                "1,000,000",
                "e = mc^2",
                "a+b=c",
                "naïve café",
                "Ελληνικά",
                "Русский текст",
                "中文字符",
                "日本語のテキスト",
                "한국어",
                "עברית",
                "العربية",
                "emoji 😀🎉",
                "👩‍👩‍👧",
                "𝔘𝔫𝔦𝔠𝔬𝔡𝔢",
                "ß",
                "İstanbul",
                "ﬁ ligature",
                "x\u0000y",
                "\u00a0non-breaking",
                "quote \"double\" 'single'",
                "back\\slash",
                "{\"json\": [1, 2]}",
                "https://example.org/path?q=1&r=2",
                "snake_case_name",
                "CamelCaseName",
                "UPPER CASE",
                "...",
                "?!",
                "a",
                " ",
                "  ",
                "   ",
                "\t\t",
                "The quick brown fox jumps over the lazy dog."));
    for (String line : Files.readAllLines(SAMPLE, StandardCharsets.UTF_8)) {
      JsonNode m = JSON.readTree(line).path("messages");
      s.add(m.get(1).path("content").asText());
      if (s.size() >= 110) break;
    }
    String[] pieces = {
      "the",
      " of",
      "and",
      "ing",
      "tion",
      " ",
      "  ",
      "\n",
      "\n\n",
      "\t",
      "0",
      "42",
      "1999",
      ".",
      ",",
      "!",
      "?",
      "-",
      "_",
      "(",
      ")",
      "\"",
      "'",
      "é",
      "ü",
      "ñ",
      "ø",
      "Ж",
      "λ",
      "中",
      "語",
      "한",
      "😀",
      "🚀",
      "€",
      "£",
      "½",
      "→",
      "∑",
      "\u2581",
      "<s>",
      "</s>",
      "[INST]",
      "Mistral",
      "llama",
      "LoRA",
      "adapter",
      "GGUF",
      "quantized",
      "a",
      "A",
      "zz",
      "Q",
      "x",
      "www",
      "http"
    };
    SplittableRandom r = new SplittableRandom(16);
    while (s.size() < 200) {
      StringBuilder b = new StringBuilder();
      int n = 1 + r.nextInt(12);
      for (int i = 0; i < n; i++) b.append(pieces[r.nextInt(pieces.length)]);
      s.add(b.toString());
    }
    return s;
  }

  @Test
  void tokenizationOf200StringsEqualsOurs() {
    assertEquals(200, strings.size());
    for (String name : List.of("f16", "q8_0", "lora")) {
      JsonNode toks = result.path("models").path(name).path("tokens");
      List<String> diffs = new ArrayList<>();
      for (int i = 0; i < strings.size(); i++) {
        int[] ours = tokenizer.encode(strings.get(i), false);
        int[] theirs = toInts(toks.get(i));
        if (!Arrays.equals(ours, theirs)) {
          diffs.add(
              JSON.valueToTree(strings.get(i))
                  + ": lora4j "
                  + Arrays.toString(ours)
                  + ", llama.cpp "
                  + Arrays.toString(theirs));
        }
      }
      assertTrue(
          diffs.isEmpty(),
          name
              + ": "
              + diffs.size()
              + " strings tokenized differently:\n"
              + String.join("\n", diffs.subList(0, Math.min(10, diffs.size()))));
    }
  }

  @Test
  void metadataReadBackByLlamaCpp() throws IOException {
    String source = ChatTemplate.fromModelDir(MODEL).source();
    for (String name : List.of("f16", "q8_0", "lora")) {
      JsonNode m = result.path("models").path(name);
      assertEquals(source, m.path("chatTemplate").asText(), name + ": chat template");
      assertEquals(tokenizer.bosId(), m.path("bos").asInt(), name + ": BOS");
      assertEquals(tokenizer.eosId(), m.path("eos").asInt(), name + ": EOS");
      assertTrue(m.path("addBos").asBoolean(), name + ": add_bos_token");
      assertEquals(vocab, m.path("vocabSize").asInt(), name + ": vocabulary size");
    }
  }

  /** Per position: llama.cpp's top-1, lora4j's top-1, the largest probability difference. */
  record Position(int prompt, int pos, int ours, int theirs, double maxDiff, int worstToken) {}

  List<Position> compare(String name) throws IOException {
    Path f = tmp.resolve(name + ".probs.f32");
    ByteBuffer buf = ByteBuffer.wrap(Files.readAllBytes(f)).order(ByteOrder.LITTLE_ENDIAN);
    FloatBuffer fb = buf.asFloatBuffer();
    List<Position> out = new ArrayList<>();
    float[] row = new float[vocab];
    for (int p = 0; p < prompts.size(); p++) {
      for (int i = 0; i < prompts.get(p).length; i++) {
        fb.get(row);
        float[] ref = reference[p];
        int ours = 0, theirs = 0, worst = 0;
        double maxDiff = 0, sum = 0;
        for (int v = 0; v < vocab; v++) {
          sum += row[v];
          if (ref[i * vocab + v] > ref[i * vocab + ours]) ours = v;
          if (row[v] > row[theirs]) theirs = v;
          double d = Math.abs(row[v] - ref[i * vocab + v]);
          if (d > maxDiff) {
            maxDiff = d;
            worst = v;
          }
        }
        assertEquals(
            1.0,
            sum,
            1e-3,
            name
                + ": llama.cpp's probabilities at prompt "
                + p
                + " position "
                + i
                + " do not sum to 1");
        out.add(new Position(p, i, ours, theirs, maxDiff, worst));
      }
    }
    assertFalse(fb.hasRemaining(), name + ": more probabilities than positions");
    return out;
  }

  void assertClose(String name) throws IOException {
    List<Position> ps = compare(name);
    double worst = 0;
    for (Position x : ps) {
      assertEquals(
          x.ours,
          x.theirs,
          name
              + ": top-1 differs at prompt "
              + x.prompt
              + " position "
              + x.pos
              + ": lora4j "
              + x.ours
              + " ("
              + tokenizer.idToToken(x.ours)
              + "), llama.cpp "
              + x.theirs
              + " ("
              + tokenizer.idToToken(x.theirs)
              + ")");
      assertTrue(
          x.maxDiff <= 1e-2,
          name
              + ": probability of token "
              + x.worstToken
              + " differs by "
              + x.maxDiff
              + " at prompt "
              + x.prompt
              + " position "
              + x.pos);
      worst = Math.max(worst, x.maxDiff);
    }
    System.out.printf(
        Locale.ROOT,
        "%s: %d positions, top-1 equal everywhere, largest probability difference %.2e%n",
        name,
        ps.size(),
        worst);
  }

  @Test
  void mergedF16DistributionsMatch() throws IOException {
    assertClose("f16");
  }

  @Test
  void baseWithAdapterDistributionsMatch() throws IOException {
    assertClose("lora");
  }

  @Test
  void mergedQ8_0Top1Agrees() throws IOException {
    List<Position> ps = compare("q8_0");
    long same = ps.stream().filter(x -> x.ours == x.theirs).count();
    double worst = ps.stream().mapToDouble(Position::maxDiff).max().orElse(0);
    System.out.printf(
        Locale.ROOT,
        "q8_0: top-1 agreement %d/%d, largest probability difference %.2e%n",
        same,
        ps.size(),
        worst);
    assertTrue(
        same >= 0.95 * ps.size(),
        "q8_0: top-1 agrees at only " + same + " of " + ps.size() + " positions");
  }

  @Test
  void greedyChatGenerationStopsAtEosAsInLora4j() {
    int eos = tokenizer.eosId();
    long ending = generations.stream().filter(g -> g.length > 0 && g[g.length - 1] == eos).count();
    assertTrue(
        ending >= prompts.size() / 2,
        "lora4j's greedy generation reached EOS for only "
            + ending
            + " of "
            + prompts.size()
            + " prompts: the model was not trained enough for this check to mean much");
    System.out.printf(
        Locale.ROOT,
        "greedy chat generation: lora4j stops at EOS for %d of %d prompts%n",
        ending,
        prompts.size());
    for (String name : List.of("f16", "lora", "q8_0")) {
      JsonNode m = result.path("models").path(name);
      for (int i = 0; i < prompts.size(); i++) {
        int[] ours = generations.get(i);
        int[] theirs = toInts(m.path("generations").get(i));
        boolean oursStops = ours.length > 0 && ours[ours.length - 1] == eos;
        boolean theirsStops =
            m.path("stoppedAtEog").get(i).asBoolean() && theirs[theirs.length - 1] == eos;
        String what =
            name
                + ", prompt "
                + i
                + ": lora4j "
                + Arrays.toString(ours)
                + " llama.cpp "
                + Arrays.toString(theirs);
        if (!name.equals("q8_0"))
          assertArrayEquals(ours, theirs, "greedy generation differs: " + what);
        assertEquals(oursStops, theirsStops, "stops at EOS in one and not the other: " + what);
      }
    }
  }

  static int[] toInts(JsonNode a) {
    int[] out = new int[a.size()];
    for (int i = 0; i < out.length; i++) out[i] = a.get(i).asInt();
    return out;
  }
}
