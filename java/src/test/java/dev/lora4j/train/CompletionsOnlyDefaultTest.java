package dev.lora4j.train;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.lora4j.Dataset;
import dev.lora4j.Device;
import dev.lora4j.Fixtures;
import dev.lora4j.LoraTrainer;
import dev.lora4j.MistralModel;
import dev.lora4j.TrainingConfig;
import dev.lora4j.TrainingResult;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * trainOnCompletionsOnly left unset follows TRL's SFTTrainer: prompt / completion and Alpaca data
 * count the completions only (completion_only_loss), chat data every token (assistant_only_loss
 * false); a value given wins either way.
 */
class CompletionsOnlyDefaultTest {
  @TempDir Path tmp;

  /** Two prompt / completion lines and a chat line, the tests' data. */
  private static final String PROMPT_COMPLETION =
      "{\"prompt\": \"Two and two make\", \"completion\": \" four.\"}\n"
          + "{\"prompt\": \"The sky is\", \"completion\": \" blue.\"}\n";

  private static final String CHAT =
      "{\"messages\": [{\"role\": \"user\", \"content\": \"Hello there, how are you?\"},"
          + " {\"role\": \"assistant\", \"content\": \"Fine.\"}]}\n";

  private Path write(String name, String text) throws java.io.IOException {
    return Files.writeString(tmp.resolve(name), text);
  }

  private long counted(MistralModel m, Path data, Boolean completionsOnly) {
    TrainingConfig.Builder b = TrainingConfig.builder().outputDir(tmp.resolve("unused"));
    if (completionsOnly != null) b.trainOnCompletionsOnly(completionsOnly.booleanValue());
    return LoraTrainer.evaluate(m, Dataset.jsonl(data), b.build()).tokens();
  }

  @Test
  void theDefaultDependsOnTheDataFormatAsTrls() throws Exception {
    assertNull(TrainingConfig.builder().outputDir(tmp).build().trainOnCompletionsOnly());
    Path pc = write("pc.jsonl", PROMPT_COMPLETION);
    Path alpaca = tmp.resolve("alpaca.jsonl");
    Files.writeString(
        alpaca, "{\"instruction\": \"Name a colour of the sky.\", \"output\": \"Blue.\"}\n");
    Path chat = write("chat.jsonl", CHAT);
    try (MistralModel m = MistralModel.load(Fixtures.TINY_MISTRAL, Device.cpu())) {
      for (Path d : new Path[] {pc, alpaca}) {
        long only = counted(m, d, true), all = counted(m, d, false);
        assertTrue(only < all, d + ": " + only + " vs " + all);
        assertEquals(only, counted(m, d, null), d.toString());
      }
      long only = counted(m, chat, true), all = counted(m, chat, false);
      assertTrue(only < all, only + " vs " + all);
      assertEquals(all, counted(m, chat, null));
    }
  }

  @Test
  void aValidationFileInAnotherFormatFollowsItsOwnFormatsDefault() throws Exception {
    // SFTTrainer decides completion_only_loss for each dataset: prompt / completion training data
    // counts its completions, a chat validation file every token; a value given applies to both
    Path pc = write("train-pc.jsonl", PROMPT_COMPLETION);
    Path chat = write("valid-chat.jsonl", CHAT);
    try (MistralModel m = MistralModel.load(Fixtures.TINY_MISTRAL, Device.cpu())) {
      long all = counted(m, chat, false), only = counted(m, chat, true);
      assertTrue(only < all, only + " vs " + all);
      TrainingConfig.Builder b =
          TrainingConfig.builder().maxSteps(1).batchSize(1).validationFile(chat);
      TrainingResult unset =
          LoraTrainer.fit(
              m, Dataset.jsonl(pc), b.outputDir(tmp.resolve("v1")).build(), java.util.List.of());
      assertEquals(all, unset.evaluations().get(unset.evaluations().size() - 1).tokens());
      TrainingResult given =
          LoraTrainer.fit(
              m,
              Dataset.jsonl(pc),
              b.outputDir(tmp.resolve("v2")).trainOnCompletionsOnly(true).build(),
              java.util.List.of());
      assertEquals(only, given.evaluations().get(given.evaluations().size() - 1).tokens());
    }
  }

  @Test
  void aRunWarnsOfPromptsWhoseMaskCoversTheCompletionsStart() throws Exception {
    Path pc = tmp.resolve("space.jsonl");
    Files.writeString(
        pc,
        "{\"prompt\": \"Question: the capital of France? Answer: \", \"completion\": \"Paris\"}\n"
            + "{\"prompt\": \"Question: two and two? Answer: \", \"completion\": \"four\"}\n");
    try (MistralModel m = MistralModel.load(Fixtures.TINY_MISTRAL, Device.cpu())) {
      TrainingResult r =
          LoraTrainer.fit(
              m,
              Dataset.jsonl(pc),
              TrainingConfig.builder().outputDir(tmp.resolve("out")).maxSteps(1).build(),
              java.util.List.of());
      assertTrue(
          r.warnings().stream()
              .anyMatch(
                  w ->
                      w.startsWith("2 training example(s) (the first at ")
                          && w.contains("space.jsonl:1")),
          r.warnings().toString());
    }
  }

  @Test
  void resumedWithoutTheSettingARunKeepsWhatItsCheckpointRecorded() throws Exception {
    // a run begun with every token counting (as every run did before the default followed the
    // data's format) resumes without the setting typed: the checkpoint's value, not a mismatch
    Path pc = write("pc2.jsonl", PROMPT_COMPLETION);
    TrainingConfig all =
        TrainingConfig.builder()
            .outputDir(tmp.resolve("r"))
            .maxSteps(2)
            .saveSteps(1)
            .batchSize(1)
            .trainOnCompletionsOnly(false)
            .build();
    try (MistralModel m = MistralModel.load(Fixtures.TINY_MISTRAL, Device.cpu())) {
      LoraTrainer.fit(m, Dataset.jsonl(pc), all, java.util.List.of());
    }
    java.nio.file.Files.walk(tmp.resolve("r/checkpoint-2"))
        .sorted(java.util.Comparator.reverseOrder())
        .forEach(p -> p.toFile().delete());
    TrainingConfig resumed =
        all.toBuilder().trainOnCompletionsOnly((Boolean) null).resume(true).build();
    try (MistralModel m = MistralModel.load(Fixtures.TINY_MISTRAL, Device.cpu())) {
      TrainingResult r = LoraTrainer.fit(m, Dataset.jsonl(pc), resumed, java.util.List.of());
      assertEquals(2, r.steps());
    }
  }
}
