package dev.lora4j.cli;

import dev.lora4j.GenerationConfig;
import dev.lora4j.Generator;
import dev.lora4j.MistralModel;
import java.nio.file.Path;
import java.util.Locale;
import java.util.concurrent.Callable;
import picocli.CommandLine.ArgGroup;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

/** {@code generate}: text from the model, with an adapter when given, streamed as it comes. */
@Command(
    name = "generate",
    mixinStandardHelpOptions = true,
    description = {
      "Generate text: greedy by default, sampling with --temperature > 0. --chat wraps the"
          + " message in the model's chat template; --prompt is used as plain text.",
      ""
    })
final class GenerateCommand implements Callable<Integer> {
  @Mixin ModelOptions modelOptions;

  @Spec CommandSpec spec;

  @Option(
      names = "--adapter",
      paramLabel = "DIR",
      description = "PEFT adapter to apply (default: none, the base model)")
  Path adapter;

  @ArgGroup(exclusive = true, multiplicity = "1")
  Input input;

  static final class Input {
    @Option(
        names = "--prompt",
        paramLabel = "TEXT",
        description = "plain-text prompt, continued as it is")
    String prompt;

    @Option(
        names = "--chat",
        paramLabel = "TEXT",
        description = "a user message, rendered with the model's chat template")
    String chat;
  }

  @Option(
      names = "--max-new-tokens",
      defaultValue = "128",
      paramLabel = "N",
      description =
          "most tokens to generate; stops earlier at the end-of-sequence token (default:"
              + " ${DEFAULT-VALUE})")
  int maxNew;

  @Option(
      names = "--temperature",
      defaultValue = "0",
      paramLabel = "T",
      description = "sampling temperature; 0 is greedy decoding (default: ${DEFAULT-VALUE})")
  double temperature;

  @Option(
      names = "--top-k",
      defaultValue = "0",
      paramLabel = "K",
      description =
          "sample among the K most likely tokens only; 0 for no limit (default: ${DEFAULT-VALUE})")
  int topK;

  @Option(
      names = "--top-p",
      defaultValue = "1.0",
      paramLabel = "P",
      description =
          "sample among the most likely tokens whose probabilities add up to P (nucleus); 1 for no"
              + " limit (default: ${DEFAULT-VALUE})")
  double topP;

  @Option(
      names = "--seed",
      defaultValue = "0",
      paramLabel = "N",
      description =
          "seed of the sampling; the same seed gives the same text (default: ${DEFAULT-VALUE})")
  long seed;

  @Override
  public Integer call() {
    // no character cap of its own: the prompt's tokens and --max-new-tokens must fit the engine's
    // positions (--max-positions), and that is checked (a 32,768-character cap refused prompts
    // a 32k-position model holds)
    GenerationConfig cfg =
        new GenerationConfig(maxNew, temperature, topK, topP, seed, Integer.MAX_VALUE);
    long start = System.nanoTime();
    try (MistralModel m = modelOptions.load()) {
      if (adapter != null) m.attachAdapter(adapter);
      spec.commandLine()
          .getErr()
          .println(loadLine(m.device().toString(), adapter != null, System.nanoTime() - start));
      Generator g = new Generator(m);
      // the text streamed as it is produced, with --chat (the answer) as with --prompt
      int[] ids =
          input.chat != null ? g.chatPromptIds(input.chat, cfg) : g.promptIds(input.prompt, cfg);
      g.generateText(
          ids,
          cfg,
          s -> {
            System.out.print(s);
            System.out.flush();
          });
      System.out.println();
      Generator.Stats st = g.lastStats();
      if (st != null) spec.commandLine().getErr().println(statsLine(st));
    }
    return 0;
  }

  /**
   * The time from the command's start to a model ready on its device, on stderr before the text.
   */
  static String loadLine(String device, boolean adapter, long nanos) {
    return String.format(
        Locale.ROOT,
        "lora4j: model%s loaded on %s in %.1f s",
        adapter ? " and adapter" : "",
        device,
        nanos / 1e9);
  }

  /**
   * The engine's time in the generation, then the generation's all told (sampling and output
   * included), on stderr after the text.
   */
  static String statsLine(Generator.Stats st) {
    String line =
        String.format(
            Locale.ROOT,
            "lora4j: prompt %d tokens in %.1f ms (%.0f tokens/s); %d decode steps",
            st.promptTokens(),
            st.prefillNanos() / 1e6,
            st.prefillTokensPerSecond(),
            st.decodeSteps());
    if (st.decodeSteps() > 0) {
      line +=
          String.format(
              Locale.ROOT,
              " in %.1f ms (%.1f tokens/s, %.2f ms a token)",
              st.decodeNanos() / 1e6,
              st.decodeTokensPerSecond(),
              st.decodeNanos() / 1e6 / st.decodeSteps());
    }
    return line
        + String.format(
            Locale.ROOT,
            "; %d %s in %.1f ms all told (%.1f tokens/s)",
            st.tokens(),
            st.tokens() == 1 ? "token" : "tokens",
            st.totalNanos() / 1e6,
            st.tokensPerSecond());
  }
}
