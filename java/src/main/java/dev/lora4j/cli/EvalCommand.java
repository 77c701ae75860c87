package dev.lora4j.cli;

import dev.lora4j.LoraTrainer;
import dev.lora4j.LossSum;
import dev.lora4j.MistralModel;
import dev.lora4j.data.DataConfig;
import dev.lora4j.data.DataStats;
import dev.lora4j.data.JsonlDataset;
import java.nio.file.Path;
import java.util.Locale;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

/** {@code eval}: loss and perplexity of the base model and, with --adapter, of the fine-tuned. */
@Command(
    name = "eval",
    mixinStandardHelpOptions = true,
    description =
        "Validation loss and perplexity of the base model and of the model with --adapter.")
final class EvalCommand implements Callable<Integer> {
  @Mixin ModelOptions modelOptions;

  @Option(
      names = "--data",
      required = true,
      paramLabel = "FILE.jsonl",
      description = "evaluation data, one JSON example per line (UTF-8)")
  Path data;

  @Option(
      names = "--adapter",
      paramLabel = "DIR",
      description =
          "PEFT adapter to evaluate next to the base model (default: the base model only)")
  Path adapter;

  @Option(
      names = "--format",
      paramLabel = "text|prompt_completion|alpaca|chat|pretokenized",
      description = "data format (default: detected from the first valid line)")
  String format;

  @Option(
      names = "--batch-size",
      defaultValue = "4",
      paramLabel = "N",
      description = "rows per batch (default: ${DEFAULT-VALUE})")
  int batchSize;

  @Option(
      names = "--max-seq-length",
      defaultValue = "2048",
      paramLabel = "N",
      description =
          "longest row in tokens; longer examples are cut and reported (default: ${DEFAULT-VALUE})")
  int maxSeqLength;

  @Option(
      names = "--completions-only",
      negatable = true,
      description =
          "count completions / assistant turns only (default: as TRL's SFTTrainer, on for"
              + " prompt / completion and Alpaca data, off for chat, text and input_ids)")
  Boolean completionsOnly;

  @Option(
      names = "--skip-invalid",
      description =
          "skip bad lines (malformed, not UTF-8), count them and report the first few (default:"
              + " off)")
  boolean skipInvalid;

  @Override
  public Integer call() {
    try (MistralModel m = modelOptions.load(modelOptions.device, maxSeqLength)) {
      DataConfig cfg =
          DataConfig.builder()
              .format(format == null ? null : TrainCommand.parseFormat(format))
              .batchSize(batchSize)
              .maxSeqLength(Math.min(maxSeqLength, m.maxSeqLength()))
              .completionsOnly(Boolean.TRUE.equals(completionsOnly))
              .skipInvalid(skipInvalid)
              .shuffleBuffer(0)
              .build();
      JsonlDataset ds = JsonlDataset.open(data, m.textEncoder(), m.chatEncoder(), cfg);
      // not typed: as TRL's SFTTrainer for the data's format (and as train decides it)
      if (completionsOnly == null) ds = ds.withCompletionsOnlyOfItsFormat();
      // the adapter read and checked against the model before the base model's pass, which on a
      // large model and data set takes long: a bad adapter is refused at once
      dev.lora4j.model.peft.LoraAdapter given =
          adapter == null ? null : dev.lora4j.model.peft.LoraAdapter.read(adapter);
      if (given != null) given.validate(m.config());
      DataStats stats = new DataStats();
      LossSum ls = LoraTrainer.evaluate(m, ds, stats);
      double[] base = {ls.mean(), ls.tokens()};
      System.out.println("data: " + Flags.translate(stats.report().describe()));
      System.out.printf(
          Locale.ROOT,
          "base model: loss %.4f perplexity %.3f over %d tokens%n",
          base[0],
          Math.exp(base[0]),
          (long) base[1]);
      if (given != null) {
        m.attachAdapter(given);
        double[] tuned = loss(m, ds);
        System.out.printf(
            Locale.ROOT,
            "with adapter: loss %.4f perplexity %.3f over %d tokens%n",
            tuned[0],
            Math.exp(tuned[0]),
            (long) tuned[1]);
      }
    }
    return 0;
  }

  static double[] loss(MistralModel m, JsonlDataset ds) {
    LossSum ls = LoraTrainer.evaluate(m, ds);
    return new double[] {ls.mean(), ls.tokens()};
  }
}
