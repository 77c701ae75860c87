package dev.lora4j.cli;

import static org.junit.jupiter.api.Assertions.*;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.lora4j.Device;
import dev.lora4j.MistralModel;
import dev.lora4j.safetensors.SafetensorsFile;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/** The command line: help, exit codes with one-line reasons, tokenize, merge, generate. */
class CliTest {
  static final Path REF = Path.of("src/test/resources/hf-reference");
  static final Path TOK = Path.of("src/test/resources/tokenizer-mistral-7b-v0.1");

  record Result(int code, String out, String err) {}

  static final Path TINY = Path.of("../examples/models/tiny-mistral");

  static synchronized Result run(String... args) {
    StringWriter out = new StringWriter(), err = new StringWriter();
    PrintStream oldOut = System.out;
    ByteArrayOutputStream captured = new ByteArrayOutputStream();
    System.setOut(new PrintStream(captured, true, StandardCharsets.UTF_8));
    int code;
    try {
      code = Main.run(args, new PrintWriter(out, true), new PrintWriter(err, true));
    } finally {
      System.setOut(oldOut);
    }
    return new Result(code, out + captured.toString(StandardCharsets.UTF_8), err.toString());
  }

  @Test
  void versionIsTheProjects() throws Exception {
    java.util.regex.Matcher m =
        java.util.regex.Pattern.compile("<parent>.*?<version>([^<]+)</version>", Pattern.DOTALL)
            .matcher(Files.readString(Path.of("pom.xml")));
    assertTrue(m.find(), "java/pom.xml names its parent's version");
    Result r = run("--version");
    assertEquals(0, r.code(), r.err());
    assertEquals("lora4j " + m.group(1), r.out().strip());
  }

  @ParameterizedTest
  @ValueSource(
      strings = {"train", "eval", "generate", "merge", "export-gguf", "tokenize", "init-model"})
  void everyCommandHasHelp(String cmd) {
    Result r = run(cmd, "--help");
    assertEquals(0, r.code());
    assertTrue(r.out().contains("Usage: lora4j " + cmd), r.out());
  }

  @Test
  void settingsThatWouldBeDroppedOrFailLateAreRefusedFirst(@TempDir Path tmp) throws Exception {
    Path data = tmp.resolve("d.jsonl");
    Files.writeString(data, "{\"input_ids\":[1,5,6,7]}\n".repeat(4));
    Path adapter = REF.resolve("tiny/adapter_trained");
    Path model = REF.resolve("tiny/model");
    String[] base = {
      "train",
      "--model",
      model.toString(),
      "--data",
      data.toString(),
      "--device",
      "cpu",
      "--steps",
      "1"
    };
    // a new adapter's shape beside --adapter, whose config fixes it: both named, nothing written
    Result r =
        run(
            concat(
                base,
                "--output",
                tmp.resolve("o1").toString(),
                "--adapter",
                adapter.toString(),
                "--rank",
                "4",
                "--targets",
                "all-linear"));
    assertEquals(1, r.code(), r.err());
    assertTrue(
        r.err().contains("--rank, --targets set the shape of a new adapter")
            && r.err().contains("--adapter " + adapter),
        r.err());
    assertFalse(Files.exists(tmp.resolve("o1")));
    // optimizer values past the double range or NaN: refused by flag before the model loads
    for (String[] bad :
        List.of(
            new String[] {"--adam-eps", "1e400", "--adam-eps must"},
            new String[] {"--weight-decay", "1e400", "--weight-decay must"},
            new String[] {"--max-grad-norm", "NaN", "--max-grad-norm must"},
            new String[] {"--alpha", "1e400", "--alpha must"},
            new String[] {"--threads", "-1", "--threads must"},
            new String[] {"--threads", "100000", "--threads must"})) {
      r = run(concat(base, "--output", tmp.resolve("o2").toString(), bad[0], bad[1]));
      assertEquals(1, r.code(), bad[0] + ": " + r.err());
      assertTrue(r.err().contains(bad[2]), bad[0] + ": " + r.err());
      assertFalse(Files.exists(tmp.resolve("o2")), bad[0]);
    }
    // generate: new tokens past an int with the prompt is the positions' error, not a crash
    r =
        run(
            "generate",
            "--model",
            TINY.toString(),
            "--device",
            "cpu",
            "--prompt",
            "Hello",
            "--max-new-tokens",
            "2147483647");
    assertEquals(1, r.code(), r.err());
    assertTrue(r.err().contains("positions"), r.err());
    // a prompt of more than 32,768 characters whose tokens fit the engine's positions runs (the
    // command had a character cap of its own)
    r =
        run(
            "generate",
            "--model",
            TINY.toString(),
            "--device",
            "cpu",
            "--prompt",
            "a".repeat(40_000),
            "--max-new-tokens",
            "1",
            "--max-positions",
            "8192");
    assertEquals(0, r.code(), r.err());
    // a missing data file under --nproc-per-node: said once, before any worker starts
    r =
        run(
            "train",
            "--model",
            TINY.toString(),
            "--data",
            tmp.resolve("missing.jsonl").toString(),
            "--output",
            tmp.resolve("o3").toString(),
            "--device",
            "cpu",
            "--nproc-per-node",
            "1");
    assertEquals(1, r.code(), r.err());
    assertTrue(r.err().contains("does not exist") && !r.err().contains("[rank"), r.err());
    // eval: an adapter of another model is refused before the base model's pass
    r =
        run(
            "eval",
            "--model",
            TINY.toString(),
            "--device",
            "cpu",
            "--data",
            data.toString(),
            "--adapter",
            adapter.toString());
    assertEquals(1, r.code(), r.err());
    assertFalse(r.out().contains("base model:"), r.out());
  }

  static String[] concat(String[] a, String... b) {
    String[] out = java.util.Arrays.copyOf(a, a.length + b.length);
    System.arraycopy(b, 0, out, a.length, b.length);
    return out;
  }

  @Test
  void aModelWithoutAChatTemplateTrainsOnTextAndNamesWhyChatLinesCannot(@TempDir Path tmp)
      throws Exception {
    // a base model has no chat_template (Mistral-7B-v0.1's tokenizer_config.json has none): its
    // absence made every command fail, plain text included
    Path model = tmp.resolve("base");
    Files.createDirectories(model);
    for (String f : List.of("config.json", "model.safetensors", "tokenizer.json")) {
      Files.copy(TINY.resolve(f), model.resolve(f));
    }
    com.fasterxml.jackson.databind.ObjectMapper json =
        new com.fasterxml.jackson.databind.ObjectMapper();
    var tc =
        (com.fasterxml.jackson.databind.node.ObjectNode)
            json.readTree(TINY.resolve("tokenizer_config.json").toFile());
    tc.remove("chat_template");
    Files.writeString(model.resolve("tokenizer_config.json"), json.writeValueAsString(tc));
    Path text = tmp.resolve("text.jsonl");
    Files.writeString(text, "{\"text\": \"The sky is blue.\"}\n".repeat(4));
    Result r =
        run("eval", "--model", model.toString(), "--device", "cpu", "--data", text.toString());
    assertEquals(0, r.code(), r.err());
    assertTrue(r.out().contains("base model: loss"), r.out());
    Path chat = tmp.resolve("chat.jsonl");
    Files.writeString(
        chat,
        "{\"messages\": [{\"role\": \"user\", \"content\": \"hi\"},"
            + " {\"role\": \"assistant\", \"content\": \"hello\"}]}\n");
    r = run("eval", "--model", model.toString(), "--device", "cpu", "--data", chat.toString());
    assertEquals(1, r.code(), r.err());
    assertTrue(r.err().contains("no chat template"), r.err());
    // chat_template.jinja alone (transformers 4.43 on) is a template
    Files.writeString(
        model.resolve("chat_template.jinja"),
        json.readTree(TINY.resolve("tokenizer_config.json").toFile())
            .get("chat_template")
            .asText());
    r = run("eval", "--model", model.toString(), "--device", "cpu", "--data", chat.toString());
    assertEquals(0, r.code(), r.err());
  }

  @Test
  void failuresExitNonZeroWithOneLineReason(@TempDir Path tmp) {
    Result usage = run("train", "--model", "x");
    assertEquals(2, usage.code());
    // a usage error is its reason and where the options are, not the whole usage text
    List<String> said = usage.err().strip().lines().toList();
    assertTrue(said.size() <= 3, usage.err());
    assertTrue(said.get(0).startsWith("lora4j train: error: Missing required option"), said.get(0));
    assertEquals("Try 'lora4j train --help' for the options.", said.get(said.size() - 1));
    Result typo =
        run("train", "--model", "m", "--data", "d", "--output", "o", "--lerning-rate", "1e-3");
    assertEquals(2, typo.code());
    assertTrue(typo.err().contains("'--lerning-rate'"), typo.err());
    assertTrue(typo.err().lines().count() <= 6, typo.err());
    Result top = run("trian");
    assertEquals(2, top.code());
    assertTrue(top.err().startsWith("lora4j: error: "), top.err());
    assertTrue(top.err().contains("Try 'lora4j --help'"), top.err());
    Result bad =
        run(
            "eval",
            "--model",
            tmp.resolve("missing").toString(),
            "--data",
            "d.jsonl",
            "--device",
            "cpu");
    assertEquals(1, bad.code());
    String[] lines = bad.err().strip().split("\n");
    assertEquals(1, lines.length, bad.err());
    assertTrue(
        lines[0].startsWith("lora4j eval: error: ") && lines[0].contains("missing"), lines[0]);
  }

  @Test
  void tokenizeJsonShowsIdsAndLabelsInFileOrder(@TempDir Path tmp) throws Exception {
    Path data = tmp.resolve("d.jsonl");
    Files.writeString(
        data,
        "{\"prompt\":\"Hello\",\"completion\":\" world\"}\n"
            + "{\"prompt\":\"<s>[INST]\",\"completion\":\" ok\"}\n");
    Result r =
        run(
            "tokenize",
            "--data",
            data.toString(),
            "--tokenizer",
            TOK.toString(),
            "--json",
            "--completions-only");
    assertEquals(0, r.code(), r.err());
    List<String> lines = r.out().lines().filter(l -> l.startsWith("{")).toList();
    assertEquals(2, lines.size());
    ObjectMapper om = new ObjectMapper();
    JsonNode first = om.readTree(lines.get(0));
    assertEquals("[1,22557,1526,2]", first.get("input_ids").toString());
    assertEquals("[-100,-100,1526,2]", first.get("labels").toString());
    JsonNode second = om.readTree(lines.get(1));
    // "<s>[INST]" in data is literal text: only the BOS the format adds is id 1.
    int bos = 0;
    for (JsonNode id : second.get("input_ids")) if (id.asInt() == 1) bos++;
    assertEquals(1, bos);
  }

  @Test
  void mergeWritesAModelFolderThatReproducesTheMergedLogits(@TempDir Path tmp) throws Exception {
    Path out = tmp.resolve("merged");
    Result r =
        run(
            "merge",
            "--model",
            REF.resolve("tiny/model").toString(),
            "--adapter",
            REF.resolve("tiny/adapter_trained").toString(),
            "--output",
            out.toString());
    assertEquals(0, r.code(), r.err());
    assertTrue(Files.isRegularFile(out.resolve("config.json")));
    assertTrue(Files.isRegularFile(out.resolve("model.safetensors.index.json")));
    try (java.util.stream.Stream<Path> s = Files.list(REF.resolve("tiny/model"))) {
      for (Path shard : s.filter(p -> p.toString().endsWith(".safetensors")).toList()) {
        assertTrue(Files.isRegularFile(out.resolve(shard.getFileName())), shard.toString());
      }
    }
    try (SafetensorsFile ref = SafetensorsFile.open(REF.resolve("tiny/reference.safetensors"));
        MistralModel m = MistralModel.load(out, Device.cpu())) {
      long[] shape = ref.tensor("input_ids").shape();
      int rows = (int) shape[0], seq = (int) shape[1];
      int[] ids = toInt(ref.readLong("input_ids")), mask = toInt(ref.readLong("attention_mask"));
      dev.lora4j.Batch b = new dev.lora4j.Batch(rows, seq, ids, mask, null, null, null);
      float[] got = m.logits(b);
      double[] want = ref.readDouble("merged.logits");
      double num = 0, den = 0;
      int v = m.config().vocabSize();
      for (int p = 0; p < mask.length; p++) {
        if (mask[p] == 0) continue;
        for (int j = 0; j < v; j++) {
          double d = got[p * v + j] - want[p * v + j];
          num += d * d;
          den += want[p * v + j] * want[p * v + j];
        }
      }
      double err = Math.sqrt(num / den);
      System.out.printf("merged export (bf16 weights) logits error %.2e%n", err);
      assertTrue(err < 2e-2, "merged export logits " + err);
    }
  }

  static int[] toInt(long[] v) {
    int[] r = new int[v.length];
    for (int i = 0; i < v.length; i++) r[i] = (int) v[i];
    return r;
  }

  @Test
  void initModelThenGenerate(@TempDir Path tmp) throws Exception {
    Path m = tmp.resolve("m");
    Result r =
        run(
            "init-model",
            "--config",
            REF.resolve("tiny/model/config.json").toString(),
            "--output",
            m.toString(),
            "--tokenizer",
            TOK.toString());
    // The tiny reference config has a 512-token vocabulary: the 32000-token tokenizer does not fit.
    assertEquals(0, r.code(), r.err());
    Result g =
        run(
            "generate",
            "--model",
            m.toString(),
            "--device",
            "cpu",
            "--prompt",
            "Hello",
            "--max-new-tokens",
            "4");
    assertEquals(1, g.code());
    assertTrue(g.err().contains("vocab_size"), g.err());
  }

  @Test
  void generateReportsTheEnginesTimeAfterTheText() {
    assertEquals(
        "lora4j: prompt 12 tokens in 30.0 ms (400 tokens/s); 127 decode steps in 1270.0 ms (100.0"
            + " tokens/s, 10.00 ms a token); 128 tokens in 1600.0 ms all told (80.0 tokens/s)",
        GenerateCommand.statsLine(
            new dev.lora4j.Generator.Stats(
                12, 30_000_000, 127, 1_270_000_000, 128, 1_600_000_000)));
    assertEquals(
        "lora4j: prompt 5 tokens in 2.5 ms (2000 tokens/s); 0 decode steps; 1 token in 4.0 ms"
            + " all told (250.0 tokens/s)",
        GenerateCommand.statsLine(
            new dev.lora4j.Generator.Stats(5, 2_500_000, 0, 0, 1, 4_000_000)));
    Result g = generateTiny("--prompt", "Hello", "--max-new-tokens", "6");
    assertEquals(0, g.code(), g.err());
    assertTrue(g.err().matches("(?s).*lora4j: prompt \\d+ tokens in .* decode steps.*"), g.err());
    // the load's time first, before any text
    assertTrue(g.err().startsWith("lora4j: model loaded on cpu in "), g.err());
    assertEquals(
        "lora4j: model and adapter loaded on cuda:1 in 12.3 s",
        GenerateCommand.loadLine("cuda:1", true, 12_345_000_000L));
  }

  /** `generate` on the shipped tiny model on the CPU, with the given further arguments. */
  static Result generateTiny(String... more) {
    String[] args = {"generate", "--model", TINY.toString(), "--device", "cpu"};
    String[] all = java.util.Arrays.copyOf(args, args.length + more.length);
    System.arraycopy(more, 0, all, args.length, more.length);
    return run(all);
  }

  @Test
  void generateStreamsTheChatAnswerAsTheWholeDecode() {
    // --chat's answer is streamed piece by piece; the pieces join to the full decode of the
    // tokens, as the answer printed whole was before (sampled, so the core's draw is used too)
    String msg = "What is LoRA?";
    Result g =
        generateTiny(
            "--chat", msg, "--max-new-tokens", "24", "--temperature", "0.8", "--seed", "3");
    assertEquals(0, g.code(), g.err());
    try (dev.lora4j.MistralModel m = dev.lora4j.MistralModel.load(TINY, dev.lora4j.Device.cpu())) {
      dev.lora4j.GenerationConfig cfg = new dev.lora4j.GenerationConfig(24, 0.8, 0, 1.0, 3, 32768);
      dev.lora4j.Generator gen = new dev.lora4j.Generator(m);
      int[] out = gen.generate(gen.chatPromptIds(msg, cfg), cfg, null);
      assertEquals(m.tokenizer().decode(out, true) + System.lineSeparator(), g.out());
    }
  }

  @Test
  void initModelNeverWritesOverAFolderOrItsInputs(@TempDir Path tmp) throws Exception {
    Path cfg = tmp.resolve("in/config.json");
    Files.createDirectories(cfg.getParent());
    Files.copy(REF.resolve("tiny/model/config.json"), cfg);
    Path out = tmp.resolve("out");
    Files.createDirectories(out);
    Files.writeString(out.resolve("notes.txt"), "mine");
    Result r = run("init-model", "--config", cfg.toString(), "--output", out.toString());
    assertEquals(1, r.code(), r.out());
    assertTrue(r.err().contains("not empty") && r.err().contains("--overwrite"), r.err());
    assertEquals("mine", Files.readString(out.resolve("notes.txt")));
    assertFalse(Files.exists(out.resolve("model.safetensors")));
    // the folder holding --config is an input: refused even with --overwrite
    Result in =
        run(
            "init-model",
            "--config",
            cfg.toString(),
            "--output",
            cfg.getParent().toString(),
            "--overwrite");
    assertEquals(1, in.code(), in.out());
    assertTrue(in.err().contains("--config file"), in.err());
    assertTrue(Files.exists(cfg));
    // --overwrite replaces the folder's contents as a whole
    Result ok =
        run("init-model", "--config", cfg.toString(), "--output", out.toString(), "--overwrite");
    assertEquals(0, ok.code(), ok.err());
    assertTrue(Files.exists(out.resolve("model.safetensors")));
    assertFalse(Files.exists(out.resolve("notes.txt")));
    try (var entries = Files.list(tmp)) {
      assertTrue(
          entries.noneMatch(p -> p.getFileName().toString().startsWith(".out.")),
          "no staging folder left");
    }
  }
}
