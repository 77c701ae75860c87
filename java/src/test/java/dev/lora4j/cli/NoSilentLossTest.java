package dev.lora4j.cli;

import static org.junit.jupiter.api.Assertions.*;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.lora4j.Device;
import dev.lora4j.MistralModel;
import dev.lora4j.cli.InProcessCli.Result;
import java.io.ByteArrayOutputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import java.util.SplittableRandom;
import java.util.TreeMap;
import java.util.stream.Collectors;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import picocli.CommandLine;
import picocli.CommandLine.Model.OptionSpec;

/**
 * The trials of issue 13 through the command line: each checks the exit status, the message and
 * that the user's files are byte-identical afterwards.
 */
class NoSilentLossTest {
  static final Path TINY = Path.of("src/test/resources/hf-reference/tiny");
  static final ObjectMapper JSON = new ObjectMapper();

  static Result run(String... args) {
    return InProcessCli.run(args);
  }

  /** Relative path to SHA-256 of every file under dir (sorted). */
  static TreeMap<String, String> snapshot(Path dir) throws Exception {
    TreeMap<String, String> m = new TreeMap<>();
    try (Stream<Path> s = Files.walk(dir)) {
      for (Path p : s.filter(Files::isRegularFile).toList()) {
        MessageDigest md = MessageDigest.getInstance("SHA-256");
        m.put(
            dir.relativize(p).toString(),
            HexFormat.of().formatHex(md.digest(Files.readAllBytes(p))));
      }
    }
    return m;
  }

  static Path copy(Path from, Path to) throws Exception {
    try (Stream<Path> s = Files.walk(from)) {
      for (Path p : s.toList()) {
        Path q = to.resolve(from.relativize(p).toString());
        if (Files.isDirectory(p)) Files.createDirectories(q);
        else Files.copy(p, q);
      }
    }
    return to;
  }

  static Path data(Path dir, int n) throws Exception {
    SplittableRandom r = new SplittableRandom(1);
    StringBuilder sb = new StringBuilder();
    for (int i = 0; i < n; i++) {
      sb.append("{\"input_ids\":[");
      int len = 8 + r.nextInt(8);
      for (int t = 0; t < len; t++) sb.append(t == 0 ? "" : ",").append(3 + r.nextInt(60));
      sb.append("]}\n");
    }
    Path f = dir.resolve("data.jsonl");
    Files.writeString(f, sb);
    return f;
  }

  static List<String> train(Path model, Path data, Path out, String... more) {
    List<String> a =
        new ArrayList<>(
            List.of(
                "train",
                "--model",
                model.toString(),
                "--data",
                data.toString(),
                "--output",
                out.toString(),
                "--device",
                "cpu",
                "--threads",
                "1",
                "--rank",
                "4",
                "--alpha",
                "8",
                "--lr",
                "5e-3",
                "--batch-size",
                "4",
                "--log-steps",
                "1000",
                "--seed",
                "5"));
    a.addAll(List.of(more));
    return a;
  }

  /** The arguments with a flag's value replaced. */
  static List<String> with(List<String> args, String flag, String value) {
    List<String> a = new ArrayList<>(args);
    a.set(a.indexOf(flag) + 1, value);
    return a;
  }

  static Result run(List<String> args) {
    return run(args.toArray(new String[0]));
  }

  static String errorLine(Result r) {
    List<String> lines = r.err().lines().filter(l -> l.contains("error:")).toList();
    assertEquals(1, lines.size(), r.err());
    return lines.get(0);
  }

  // ---- 1. outputs never overwrite inputs or earlier results ---------------------------------

  @Test
  void mergeRefusesAnOutputThatIsInsideOrContainsTheModel(@TempDir Path tmp) throws Exception {
    Path model = copy(TINY.resolve("model"), tmp.resolve("model"));
    Path adapter = copy(TINY.resolve("adapter_trained"), tmp.resolve("adapter"));
    var before = snapshot(tmp);
    String[][] cases = {
      {model.toString(), "is the --model folder"},
      {model.resolve("merged").toString(), "is inside the --model folder"},
      {tmp.toString(), "contains the --model folder"},
      {adapter.toString(), "is the --adapter folder"},
    };
    for (String[] c : cases) {
      Result r =
          run(
              "merge",
              "--model",
              model.toString(),
              "--adapter",
              adapter.toString(),
              "--output",
              c[0]);
      assertEquals(1, r.code(), r.err());
      String line = errorLine(r);
      assertTrue(line.contains(c[1]) && line.contains("--output"), line);
      assertEquals(before, snapshot(tmp), "files unchanged after merge --output " + c[0]);
    }
  }

  @Test
  void mergeRefusesANonEmptyFolderAndOverwriteReplacesItWhole(@TempDir Path tmp) throws Exception {
    Path model = TINY.resolve("model"), adapter = TINY.resolve("adapter_trained");
    Path other = tmp.resolve("other");
    Files.createDirectories(other);
    Files.writeString(other.resolve("model.safetensors.index.json"), "{\"weight_map\":{}}");
    Files.writeString(other.resolve("model.safetensors"), "another model");
    var before = snapshot(other);
    Result r =
        run(
            "merge",
            "--model",
            model.toString(),
            "--adapter",
            adapter.toString(),
            "--output",
            other.toString());
    assertEquals(1, r.code());
    String line = errorLine(r);
    assertTrue(line.contains("not empty") && line.contains("--overwrite"), line);
    assertEquals(before, snapshot(other));

    Result ok =
        run(
            "merge",
            "--model",
            model.toString(),
            "--adapter",
            adapter.toString(),
            "--output",
            other.toString(),
            "--overwrite");
    assertEquals(0, ok.code(), ok.err());
    assertFalse(
        Files.exists(other.resolve("model.safetensors")),
        "the old model's file is gone, not mixed in");
    try (var s = Files.list(tmp)) {
      assertEquals(
          List.of("other"),
          s.map(p -> p.getFileName().toString()).toList(),
          "no temporary folder left");
    }
    assertEquals(
        Files.readString(model.resolve("model.safetensors.index.json")),
        Files.readString(other.resolve("model.safetensors.index.json")),
        "the merged model's own index");
    try (MistralModel m = MistralModel.load(other, Device.cpu())) {
      assertNotNull(m.config(), "the replaced folder loads");
    }
  }

  @Test
  void trainRefusesAnEarlierRunUnlessResumeOrOverwrite(@TempDir Path tmp) throws Exception {
    Path model = TINY.resolve("model"), d = data(tmp, 24);
    Path out = tmp.resolve("run");
    Result first = run(train(model, d, out, "--save-steps", "2", "--save-limit", "10"));
    assertEquals(0, first.code(), first.err());
    assertTrue(Files.isDirectory(out.resolve("checkpoint-6")));
    Files.writeString(out.resolve("notes.txt"), "mine");
    var before = snapshot(out);

    Result again = run(train(model, d, out));
    assertEquals(1, again.code());
    String line = errorLine(again);
    assertTrue(
        line.contains("holds an earlier run")
            && line.contains("--resume")
            && line.contains("--overwrite"),
        line);
    assertEquals(before, snapshot(out), "the earlier run is untouched");

    Result over = run(train(model, d, out, "--overwrite", "--steps", "2"));
    assertEquals(0, over.code(), over.err());
    try (var s = Files.list(out)) {
      assertTrue(
          s.noneMatch(p -> p.getFileName().toString().startsWith("checkpoint-")),
          "the earlier run's checkpoints are deleted, not left beside the new adapter");
    }
    assertEquals("mine", Files.readString(out.resolve("notes.txt")), "other files are kept");
    long steps =
        Files.readAllLines(out.resolve("metrics.jsonl")).stream()
            .filter(l -> l.contains("\"type\":\"step\""))
            .count();
    assertEquals(2, steps, "metrics.jsonl holds the new run only");
  }

  // ---- 2. resume that checks -------------------------------------------------------------------

  @Test
  void aDamagedCheckpointIsReportedOnceAndThePreviousOneResumed(@TempDir Path tmp)
      throws Exception {
    Path model = TINY.resolve("model"), d = data(tmp, 16);
    Path out = tmp.resolve("out");
    assertEquals(0, run(train(model, d, out, "--steps", "4", "--save-steps", "2")).code());
    Path opt = out.resolve("checkpoint-4").resolve("optimizer.safetensors");
    Files.write(opt, java.util.Arrays.copyOf(Files.readAllBytes(opt), 100)); // cut short
    // the warning goes through the library's logger: counted there
    List<String> warned = java.util.Collections.synchronizedList(new ArrayList<>());
    java.util.logging.Logger log =
        java.util.logging.Logger.getLogger(dev.lora4j.train.CheckpointStore.class.getName());
    java.util.logging.Handler h =
        new java.util.logging.Handler() {
          @Override
          public void publish(java.util.logging.LogRecord rec) {
            if (rec.getMessage().contains("is damaged")) warned.add(rec.getMessage());
          }

          @Override
          public void flush() {}

          @Override
          public void close() {}
        };
    log.addHandler(h);
    Result r;
    try {
      r = run(train(model, d, out, "--steps", "4", "--save-steps", "2", "--resume"));
    } finally {
      log.removeHandler(h);
    }
    assertEquals(0, r.code(), r.err());
    assertEquals(1, warned.size(), warned.toString());
    assertTrue(warned.get(0).contains("checkpoint-4"), warned.toString());
    assertTrue(r.err().contains("resuming after step 2"), r.err());
  }

  @Test
  void resumeWithoutACheckpointIsAnError(@TempDir Path tmp) throws Exception {
    Path model = TINY.resolve("model"), d = data(tmp, 16);
    Path fresh = tmp.resolve("fresh");
    Result r = run(train(model, d, fresh, "--resume"));
    assertEquals(1, r.code());
    assertTrue(errorLine(r).contains("no checkpoint to resume from"), r.err());
    assertFalse(Files.exists(fresh), "nothing written");

    Path done = tmp.resolve("done");
    assertEquals(0, run(train(model, d, done)).code());
    var before = snapshot(done);
    Result again = run(train(model, d, done, "--resume"));
    assertEquals(1, again.code());
    String line = errorLine(again);
    assertTrue(
        line.contains("no checkpoint")
            && line.contains("--save-steps")
            && line.contains("--overwrite"),
        line);
    assertEquals(before, snapshot(done), "the earlier adapter is not overwritten");
  }

  @Test
  void resumeWithOtherSettingsNamesEachDifference(@TempDir Path tmp) throws Exception {
    Path model = TINY.resolve("model"), d = data(tmp, 24);
    Path out = tmp.resolve("run");
    assertEquals(0, run(train(model, d, out, "--save-steps", "2")).code());
    var before = snapshot(out);
    List<String> other = train(model, d, out, "--save-steps", "2", "--resume");
    other.set(other.indexOf("--rank") + 1, "8");
    other.set(other.indexOf("--seed") + 1, "7");
    Result r = run(other);
    assertEquals(1, r.code());
    String line = errorLine(r);
    assertTrue(line.contains("LoRA rank (--rank): 4 in the checkpoint, 8 now"), line);
    assertTrue(line.contains("seed (--seed): 5 in the checkpoint, 7 now"), line);
    assertFalse(line.contains("learning rate"), line);
    assertEquals(before, snapshot(out));

    // Another data file (same name, one more line) is another run.
    Files.writeString(d, Files.readString(d) + "{\"input_ids\":[5,6,7,8,9]}\n");
    Result data = run(train(model, d, out, "--save-steps", "2", "--resume"));
    assertEquals(1, data.code());
    assertTrue(errorLine(data).contains("training data size in bytes (--data)"), data.err());
    assertEquals(before, snapshot(out));
  }

  @Test
  void learningRateMayChangeOnResumeOnlyWhenTyped(@TempDir Path tmp) throws Exception {
    Path model = TINY.resolve("model"), d = data(tmp, 24);
    Path out = tmp.resolve("run");
    List<String> args = train(model, d, out, "--save-steps", "2", "--steps", "4");
    assertEquals(0, run(args).code());
    // Without --lr the default (2e-4) would silently replace the run's 5e-3.
    List<String> noLr = new ArrayList<>(args);
    int i = noLr.indexOf("--lr");
    noLr.remove(i + 1);
    noLr.remove(i);
    noLr.add("--resume");
    var before = snapshot(out);
    Result r = run(noLr);
    assertEquals(1, r.code());
    String line = errorLine(r);
    assertTrue(
        line.contains("learning rate 0.005 in the checkpoint, 2.0E-4 now (the default)")
            && line.contains("give --lr"),
        line);
    assertEquals(before, snapshot(out));

    List<String> newLr = new ArrayList<>(args);
    newLr.set(newLr.indexOf("--lr") + 1, "1e-3");
    newLr.add("--resume");
    Result ok = run(newLr);
    assertEquals(0, ok.code(), ok.err());
    assertTrue(
        ok.out()
            .contains(
                "warning: resuming with another learning rate (--lr): 0.005 in the checkpoint,"
                    + " 0.001 now"),
        ok.out());
  }

  // ---- 3. every dropped or altered example is reported ------------------------------------------

  @Test
  void droppedAndCutExamplesAreNamedInEveryReport(@TempDir Path tmp) throws Exception {
    Path model = TINY.resolve("model");
    StringBuilder sb = new StringBuilder();
    for (int i = 0; i < 20; i++) sb.append("{\"input_ids\":[3,4,5,6,7,8,9,10]}\n");
    sb.insert(
        0, "{\"input_ids\":[3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20]}\n"); // line 1: cut
    sb.append("{\"input_ids\": broken\n"); // line 22: invalid
    sb.append(
        "{\"input_ids\":[3,4,5,6,7,8,9,10,11,12,13,14],\"labels\":"
            + "[-100,-100,-100,-100,-100,-100,-100,-100,-100,-100,13,14]}\n"); // line 23: nothing
    // left
    Path d = tmp.resolve("d.jsonl");
    Files.writeString(d, sb);
    Path out = tmp.resolve("run");
    Result r =
        run(train(model, d, out, "--max-seq-length", "10", "--skip-invalid", "--steps", "2"));
    assertEquals(0, r.code(), r.err());
    // summary
    assertTrue(
        r.out()
            .contains(
                "training data: 23 lines: 21 examples; dropped 2 (1 invalid, 1 with nothing to"
                    + " learn); truncated 1"),
        r.out());
    assertTrue(r.out().contains("d.jsonl:22: invalid: malformed JSON"), r.out());
    // in the flag's name the user typed, in the summary and in the progress output
    assertTrue(
        r.out().contains("d.jsonl:1: truncated: 18 tokens cut to --max-seq-length 10"), r.out());
    assertTrue(
        r.err().contains("d.jsonl:1: truncated: 18 tokens cut to --max-seq-length 10"), r.err());
    assertTrue(
        r.out()
            .contains(
                "d.jsonl:23: nothing to learn: no token counts in the loss within its first 10"
                    + " tokens (of 12)"),
        r.out());
    // progress output
    assertTrue(r.err().contains("training data: 23 lines: 21 examples"), r.err());
    assertTrue(r.err().contains("d.jsonl:22: invalid"), r.err());
    // metrics.jsonl
    JsonNode dataLine = null;
    for (String l : Files.readAllLines(out.resolve("metrics.jsonl"))) {
      JsonNode n = JSON.readTree(l);
      if (n.get("type").asText().equals("data")) dataLine = n;
    }
    assertNotNull(dataLine);
    assertEquals(21, dataLine.get("examples").asLong());
    assertEquals(1, dataLine.get("dropped").get("invalid").asLong());
    assertEquals(1, dataLine.get("dropped").get("no_labels").asLong());
    assertEquals(1, dataLine.get("truncated").asLong()); // line 23 is a drop only
    List<String> where = new ArrayList<>();
    dataLine
        .get("first")
        .forEach(
            n ->
                where.add(
                    n.get("where").asText().replaceAll(".*:", "") + " " + n.get("issue").asText()));
    assertEquals(List.of("22 invalid", "1 truncated", "23 no_labels"), where);
  }

  @Test
  void undecodableLinesAreBadLinesNamedWithLineAndEncoding(@TempDir Path tmp) throws Exception {
    Path model = TINY.resolve("model");
    byte[] good = "{\"input_ids\":[3,4,5,6,7,8]}\n".getBytes(StandardCharsets.UTF_8);
    ByteArrayOutputStream b = new ByteArrayOutputStream();
    for (int i = 0; i < 8; i++) b.write(good);
    b.write(
        new byte[] {
          '{', '"', 't', 'e', 'x', 't', '"', ':', '"', (byte) 0xC3, (byte) 0x28, '"', '}', '\n'
        });
    b.write(good);
    Path d = tmp.resolve("bin.jsonl");
    Files.write(d, b.toByteArray());
    Result bad = run(train(model, d, tmp.resolve("a"), "--steps", "1"));
    assertEquals(1, bad.code());
    String line = errorLine(bad);
    assertTrue(
        line.contains("bin.jsonl:9: not UTF-8 text: byte 0xC3") && line.contains("--skip-invalid"),
        line);
    assertFalse(line.contains("MalformedInputException"), line);

    Result skipped = run(train(model, d, tmp.resolve("b"), "--steps", "1", "--skip-invalid"));
    assertEquals(0, skipped.code(), skipped.err());
    assertTrue(
        skipped.out().contains("dropped 1 (1 not UTF-8)")
            && skipped.out().contains("bin.jsonl:9: not UTF-8"),
        skipped.out());

    // UTF-16 text: every line is a bad line; the message says what the file is.
    Path u16 = tmp.resolve("u16.jsonl");
    Files.write(u16, "{\"input_ids\":[3,4,5]}\n".getBytes(StandardCharsets.UTF_16));
    Result r16 = run(train(model, u16, tmp.resolve("c"), "--steps", "1"));
    assertEquals(1, r16.code());
    assertTrue(
        errorLine(r16)
            .contains("u16.jsonl:1: not UTF-8 text: the file starts with a UTF-16 byte-order mark"),
        r16.err());
  }

  // ---- 4. messages speak the user's language --------------------------------------------------

  @Test
  void errorsNameTheFlagTyped(@TempDir Path tmp) throws Exception {
    Path model = TINY.resolve("model"), d = data(tmp, 8);
    Result lr = run(with(train(model, d, tmp.resolve("a")), "--lr", "-1"));
    assertEquals(1, lr.code());
    assertTrue(errorLine(lr).contains("--lr must be >= 0"), lr.err());
    Result bs = run(with(train(model, d, tmp.resolve("b")), "--batch-size", "0"));
    assertTrue(errorLine(bs).contains("--batch-size must be >= 1"), bs.err());
    Result beta = run(train(model, d, tmp.resolve("b"), "--adam-beta2", "1.5"));
    assertTrue(errorLine(beta).contains("--adam-beta2 must be in [0, 1)"), beta.err());
    Path odd = tmp.resolve("odd.jsonl");
    Files.writeString(odd, "{\"question\":\"a\"}\n");
    Result fmt = run(train(model, odd, tmp.resolve("c")));
    String line = errorLine(fmt);
    assertTrue(
        line.contains("--format") && !line.contains("DataConfig") && !line.contains("dataFormat"),
        line);
    for (Result r : List.of(lr, bs, beta, fmt)) {
      assertFalse(r.err().matches("(?s).*\\b(learningRate|batchSize|DataConfig)\\b.*"), r.err());
    }
  }

  @Test
  void groupByLengthIsRecordedAndRefusedWithPacking(@TempDir Path tmp) throws Exception {
    Path model = TINY.resolve("model"), d = data(tmp, 24);
    Path out = tmp.resolve("g");
    Result g = run(train(model, d, out, "--group-by-length", "--steps", "2", "--save-steps", "2"));
    assertEquals(0, g.code(), g.err());
    JsonNode state = JSON.readTree(out.resolve("checkpoint-2/trainer_state.json").toFile());
    assertEquals("true", state.get("run_settings").get("group_by_length").asText());
    // resuming without the flag is another run, named by its flag
    Result r = run(train(model, d, out, "--steps", "4", "--save-steps", "2", "--resume"));
    assertEquals(1, r.code());
    assertTrue(
        errorLine(r).contains("grouping by length (--group-by-length): true in the checkpoint"),
        r.err());
    Result both = run(train(model, d, tmp.resolve("p"), "--group-by-length", "--packing"));
    assertEquals(1, both.code());
    String line = errorLine(both);
    assertTrue(line.contains("--group-by-length and --packing exclude each other"), line);
  }

  @Test
  void heavyPaddingIsReportedWithTheFlagsThatSaveIt(@TempDir Path tmp) throws Exception {
    StringBuilder sb = new StringBuilder();
    for (int i = 0; i < 24; i++) {
      int len = i % 2 == 0 ? 4 : 40; // every batch of 4 pads two short rows to 40
      sb.append("{\"input_ids\":[");
      for (int t = 0; t < len; t++) sb.append(t == 0 ? "" : ",").append(3 + (i + t) % 60);
      sb.append("]}\n");
    }
    Path d = tmp.resolve("mixed.jsonl");
    Files.writeString(d, sb);
    Path model = TINY.resolve("model");
    Result plain = run(train(model, d, tmp.resolve("a"), "--steps", "3", "--shuffle-buffer", "0"));
    assertEquals(0, plain.code(), plain.err());
    String warning =
        plain
            .out()
            .lines()
            .filter(l -> l.startsWith("warning: padding took"))
            .findFirst()
            .orElse("");
    // rows of 4 and 40 tokens alternate: two of each per batch, 36 of every 80 positions padding
    assertTrue(warning.contains("padding took 45.0% of the batches' positions"), plain.out());
    assertTrue(warning.contains("--group-by-length") && warning.contains("--packing"), warning);
    Result grouped =
        run(
            train(
                model,
                d,
                tmp.resolve("b"),
                "--steps",
                "3",
                "--shuffle-buffer",
                "0",
                "--group-by-length"));
    assertEquals(0, grouped.code(), grouped.err());
    assertFalse(grouped.out().contains("padding took"), grouped.out());
  }

  @Test
  void theProgressOutputNamesFlags(@TempDir Path tmp) throws Exception {
    // 3 steps: the trainer warns that so few steps learn little, naming its settings; the
    // command line's progress output (stderr) says them as flags, as its summary does
    Path d = data(tmp, 12);
    Result r = run(train(TINY.resolve("model"), d, tmp.resolve("o"), "--steps", "3"));
    assertEquals(0, r.code(), r.err());
    List<String> warnings =
        r.err().lines().filter(l -> l.startsWith("warning:")).collect(Collectors.toList());
    assertFalse(warnings.isEmpty(), r.err());
    for (String w : warnings) {
      for (String javaName : List.of("maxSteps", "batchSize", "gradientAccumulation"))
        assertFalse(w.contains(javaName), w);
    }
    assertTrue(warnings.stream().anyMatch(w -> w.contains("--steps")), warnings.toString());
  }

  @Test
  void javaNamesBecomeFlagsButPathsStayAsTyped() {
    assertEquals(
        "/data/epochs/maxSteps.jsonl: --batch-size must be >= 1; use --overwrite or --resume",
        Flags.translate(
            "/data/epochs/maxSteps.jsonl: batchSize must be >= 1; use overwriteOutput(true) or"
                + " resume(true)"));
    assertEquals("raise --epochs or --steps.", Flags.translate("raise epochs or maxSteps."));
  }

  @Test
  void aModelWithoutTokenizerJsonIsNamedAsSuch(@TempDir Path tmp) throws Exception {
    Path d = tmp.resolve("chat.jsonl");
    Files.writeString(
        d,
        "{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"},{\"role\":\"assistant\",\"content\":\"hello\"}]}\n");
    Result r = run(train(TINY.resolve("model"), d, tmp.resolve("o")));
    assertEquals(1, r.code());
    String line = errorLine(r);
    assertTrue(line.contains("has no tokenizer.json"), line);
    assertTrue(line.contains("chat.jsonl:1"), line);
    assertFalse(line.contains("ChatEncoder"), line);
    // what the model lacks is no bad line: --skip-invalid does not drop every line of the file
    // and then report them, it stops with the same message
    Result s = run(train(TINY.resolve("model"), d, tmp.resolve("s"), "--skip-invalid"));
    assertEquals(1, s.code());
    String skipped = errorLine(s);
    assertTrue(skipped.contains("has no tokenizer.json"), skipped);
    assertFalse(skipped.contains("first invalid") || skipped.contains("--skip-invalid"), skipped);
  }

  @Test
  void theAutoDeviceChoiceIsOneShortLine(@TempDir Path tmp) throws Exception {
    Path d = data(tmp, 4);
    Result r =
        run(
            "eval",
            "--model",
            TINY.resolve("model").toString(),
            "--data",
            d.toString(),
            "--device",
            "auto");
    assertEquals(0, r.code(), r.err());
    List<String> device = r.err().lines().filter(l -> l.contains("device")).toList();
    assertEquals(1, device.size(), r.err());
    String why = Device.cudaUnavailableReason();
    if (why != null) {
      assertEquals(
          "lora4j: device cpu (--device auto found no usable CUDA GPU; --verbose says why)",
          device.get(0));
      assertFalse(r.err().contains(why), "the loader's detail only with --verbose");
      Result v =
          run(
              "eval",
              "--model",
              TINY.resolve("model").toString(),
              "--data",
              d.toString(),
              "--device",
              "auto",
              "--verbose");
      assertTrue(v.err().contains(Main.oneLine(why)), v.err());
    }
    for (String l : r.err().lines().toList()) {
      assertFalse(
          l.startsWith("INFO") || l.matches("[A-Z][a-z]{2} \\d{1,2}, \\d{4} .*"),
          "no java.util.logging timestamp lines: " + r.err());
    }
  }

  @Test
  void shortRunsAndLongWarmupsAreWarnedAbout(@TempDir Path tmp) throws Exception {
    Path d = data(tmp, 8);
    Result r = run(train(TINY.resolve("model"), d, tmp.resolve("o"), "--warmup-steps", "500"));
    assertEquals(0, r.code(), r.err());
    assertTrue(
        r.out().contains("warning: the warmup (500 steps) is as long as the run (2 steps)"),
        r.out());
    assertTrue(r.out().contains("warning: the run has only 2 optimizer steps"), r.out());
    assertTrue(
        r.err().contains("warning: the warmup (500 steps)"),
        "in the progress output too: " + r.err());
    Result quiet = run(train(TINY.resolve("model"), d, tmp.resolve("p"), "--epochs", "5"));
    assertFalse(quiet.out().contains("warning"), quiet.out());
  }

  @Test
  void everyFlagHasACompleteDescriptionWithItsDefault() {
    CommandLine root = new CommandLine(new Main());
    for (var e : root.getSubcommands().entrySet()) {
      if (e.getKey().equals("help")) continue;
      for (OptionSpec o : e.getValue().getCommandSpec().options()) {
        if (o.usageHelp() || o.versionHelp() || o.group() != null) continue;
        String text = String.join(" ", o.description());
        assertFalse(text.isBlank(), e.getKey() + " " + o.longestName() + " has no description");
        if (!o.required()) {
          assertTrue(
              text.contains("default"),
              e.getKey() + " " + o.longestName() + " names no default: " + text);
        }
      }
      // Each paragraph of the command's description is one element (picocli wraps it); an
      // element ending mid-sentence would be printed as a cut line.
      for (String p : e.getValue().getCommandSpec().usageMessage().description()) {
        assertTrue(p.isEmpty() || p.endsWith(".") || p.endsWith(")"), e.getKey() + ": " + p);
      }
    }
  }
}
