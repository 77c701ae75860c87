package dev.lora4j.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.lora4j.Lora4jException;
import dev.lora4j.TrainingConfig;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import picocli.CommandLine;

/**
 * `lora4j train --config FILE.json`: every value is read with its JSON type checked, so a value of
 * the wrong type is an error naming the file and the key (Jackson's lenient conversions made
 * {"learning_rate": "abc"} a learning rate of 0 and {"packing": "yes"} false, silently), a key
 * given twice is an error naming the line, and a value the builder refuses names the key.
 */
class TrainConfigFileTest {
  @TempDir Path tmp;

  private TrainingConfig settings(String json) throws Exception {
    return command(json).settings();
  }

  /** The train command parsed with cfg.json holding json, and more flags. */
  private TrainCommand command(String json, String... more) throws Exception {
    Path cfg = tmp.resolve("cfg.json");
    Files.writeString(cfg, json);
    List<String> args =
        new ArrayList<>(
            List.of(
                "--model",
                "m",
                "--data",
                "d.jsonl",
                "--output",
                tmp.resolve("out").toString(),
                "--config",
                cfg.toString()));
    args.addAll(List.of(more));
    TrainCommand cmd = new TrainCommand();
    new CommandLine(cmd).parseArgs(args.toArray(new String[0]));
    return cmd;
  }

  private void refused(String json, String... parts) {
    Lora4jException e = assertThrows(Lora4jException.class, () -> settings(json));
    String m = e.getMessage();
    assertTrue(m.contains(tmp.resolve("cfg.json").toString()), m);
    for (String p : parts) assertTrue(m.contains(p), "missing '" + p + "' in: " + m);
  }

  @Test
  void valuesOfTheRightTypeAreTaken() throws Exception {
    TrainingConfig c =
        settings(
            "{\"max_steps\": 7, \"learning_rate\": 0.003, \"packing\": true,"
                + " \"lora_rank\": 4, \"lora_targets\": [\"q_proj\", \"v_proj\"],"
                + " \"data_format\": \"chat\"}");
    assertEquals(7, c.maxSteps());
    assertEquals(0.003, c.learningRate());
    assertTrue(c.packing());
    assertEquals(4, c.lora().rank());
    assertEquals(2, c.lora().targets().size());
  }

  @Test
  void earlyStoppingFromTheFileAndTheFlags() throws Exception {
    TrainingConfig c =
        settings(
            "{\"eval_steps\": 5, \"validation_fraction\": 0.1,"
                + " \"early_stopping_patience\": 3, \"early_stopping_threshold\": 0.01}");
    assertEquals(3, c.earlyStoppingPatience());
    assertEquals(0.01, c.earlyStoppingThreshold());
    c =
        command(
                "{\"eval_steps\": 5, \"validation_fraction\": 0.1}",
                "--early-stopping-patience",
                "2",
                "--early-stopping-threshold",
                "0.5")
            .settings();
    assertEquals(2, c.earlyStoppingPatience());
    assertEquals(0.5, c.earlyStoppingThreshold());
    // without evaluations to compare: refused, naming what is missing
    Exception e = assertThrows(Exception.class, () -> settings("{\"early_stopping_patience\": 2}"));
    assertTrue(e.getMessage().contains("evalSteps is 0"), e.getMessage());
  }

  @Test
  void aTypedRunLengthWinsOverTheFiles() throws Exception {
    // --epochs against the file's max_steps: epochs decide (the file's steps decided before)
    TrainingConfig c = command("{\"max_steps\": 7}", "--epochs", "2").settings();
    assertEquals(0, c.maxSteps());
    assertEquals(2, c.epochs());
    c = command("{\"epochs\": 5}", "--steps", "3").settings();
    assertEquals(3, c.maxSteps());
    assertThrows(IllegalArgumentException.class, () -> command("{}", "--steps", "-5").settings());
    // a factor of a guard turned off: refused, whichever side set either
    assertThrows(
        IllegalArgumentException.class,
        () -> command("{}", "--no-guard", "--guard-loss-factor", "5").settings());
    assertThrows(
        IllegalArgumentException.class,
        () -> command("{\"guard\": false}", "--guard-grad-factor", "5").settings());
    assertThrows(
        IllegalArgumentException.class,
        () -> command("{\"guard_loss_factor\": 5}", "--no-guard").settings());
    command("{\"guard_loss_factor\": 5}").settings();
    assertThrows(
        IllegalArgumentException.class,
        () -> command("{}", "--epochs", "-1", "--steps", "3").settings());
  }

  @Test
  void aSwitchTheFileTurnsOnIsTurnedOffByItsNegatedFlag() throws Exception {
    // (packing excludes group_by_length, resume excludes overwrite: two files)
    String on =
        "{\"packing\": true, \"train_on_completions_only\": true, \"skip_invalid_lines\": true,"
            + " \"resume\": true, \"use_rslora\": true}";
    TrainingConfig c = command(on).settings();
    assertTrue(c.packing() && c.trainOnCompletionsOnly() && c.skipInvalidLines());
    assertTrue(c.resume() && c.lora().rslora());
    c =
        command(
                on,
                "--no-packing",
                "--no-completions-only",
                "--no-skip-invalid",
                "--no-resume",
                "--no-rslora")
            .settings();
    assertFalse(c.packing() || c.trainOnCompletionsOnly() || c.skipInvalidLines());
    assertFalse(c.resume() || c.lora().rslora());
    String other = "{\"group_by_length\": true, \"overwrite_output\": true}";
    c = command(other).settings();
    assertTrue(c.groupByLength() && c.overwriteOutput());
    c = command(other, "--no-group-by-length", "--no-overwrite").settings();
    assertFalse(c.groupByLength() || c.overwriteOutput());
    // --guard over the file's "guard": false (with the file's factor)
    assertFalse(command("{\"guard\": false}").settings().guard().enabled());
    TrainingConfig g =
        command("{\"guard\": false, \"guard_loss_factor\": 7}", "--guard").settings();
    assertTrue(g.guard().enabled());
    assertEquals(7.0, g.guard().lossFactor());
    // the plain flags still turn them on
    c = command("{}", "--packing", "--resume", "--rslora").settings();
    assertTrue(c.packing() && c.resume() && c.lora().rslora());
    assertFalse(c.groupByLength());
  }

  @Test
  void aValueOfTheWrongTypeNamesTheKey() {
    refused("{\"max_steps\": 2, \"learning_rate\": \"abc\"}", "'learning_rate'", "a number");
    refused("{\"packing\": \"yes\"}", "'packing'", "true or false");
    refused("{\"max_steps\": 2.5}", "'max_steps'", "a whole number");
    refused("{\"seed\": 1e30}", "'seed'", "in range");
    refused("{\"warmup_steps\": -3}", "'warmup_steps'", ">= 0");
    refused("{\"lora_rank\": \"four\"}", "'lora_rank'", "a whole number");
    refused("{\"epochs\": 3000000000}", "'epochs'", "a whole number");
    refused("{\"lora_targets\": [\"q_proj\", 3]}", "'lora_targets'", "array of strings");
    refused("{\"schedule\": 1}", "'schedule'", "a string");
  }

  @Test
  void aWholeNumberMayBeWrittenAsADouble() throws Exception {
    // as Python's json.dump writes a float that holds a whole number
    assertEquals(7, settings("{\"max_steps\": 7.0}").maxSteps());
    assertEquals(1000, settings("{\"max_steps\": 1e3}").maxSteps());
    assertEquals(0.5, settings("{\"learning_rate\": 0.5}").learningRate());
    assertEquals(1.0, settings("{\"learning_rate\": 1}").learningRate());
  }

  @Test
  void throughTheCommandLineKeysStayAsWritten() throws Exception {
    // the command line rewrites library names (epochs, batchSize) into flags; a config file's
    // errors keep its keys, and a range error from the file or a flag says both
    Path cfg = tmp.resolve("c.json");
    String[] base = {
      "train",
      "--model",
      "m",
      "--data",
      "d.jsonl",
      "--output",
      tmp.resolve("o").toString(),
      "--config",
      cfg.toString()
    };
    Files.writeString(cfg, "{\"epochs\": 2.5}");
    InProcessCli.Result r = InProcessCli.run(base);
    assertEquals(1, r.code());
    assertTrue(r.err().contains("key 'epochs' must be a whole number"), r.err());
    Files.writeString(cfg, "{\"learningRate\": 0.1}");
    r = InProcessCli.run(base);
    assertTrue(r.err().contains("unknown key 'learningRate'"), r.err());
    Files.writeString(cfg, "{\"batch_size\": 0}");
    r = InProcessCli.run(base);
    assertEquals(1, r.code());
    assertTrue(
        r.err().contains("--batch-size must be >= 1")
            && r.err().contains("from the flag or its key in " + cfg),
        r.err());
  }

  @Test
  void aKeyGivenTwiceNamesTheLine() {
    refused("{\"max_steps\": 2,\n \"max_steps\": 3}", "cfg.json:2", "max_steps");
  }

  @Test
  void aValidationFileAndAFractionTogetherAreRefused() throws Exception {
    // a fraction from the file and a validation file from the flag: one would be ignored
    Path cfg = tmp.resolve("cfg.json");
    TrainCommand cmd = command("{\"validation_fraction\": 0.1}", "--eval-data", "v.jsonl");
    IllegalArgumentException e = assertThrows(IllegalArgumentException.class, cmd::settings);
    assertTrue(e.getMessage().contains("not both"), e.getMessage());
    assertEquals(
        "--eval-data and --val-fraction are both set: hold out a fraction of the training data or"
            + " give a validation file, not both (from the flag or its key in "
            + cfg
            + ")",
        Flags.translate(e.getMessage()));
    // either alone is taken
    assertEquals(0.1, settings("{\"validation_fraction\": 0.1}").validationFraction());
  }

  @Test
  void aValueTheBuilderRefusesNamesTheKey() {
    refused("{\"data_format\": \"xml\"}", "'data_format'", "unknown data format 'xml'");
  }
}
