package dev.lora4j.cli;

import dev.lora4j.GenerationConfig;
import dev.lora4j.Generator;
import dev.lora4j.MistralModel;
import java.nio.file.Path;
import java.util.concurrent.Callable;
import picocli.CommandLine.ArgGroup;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

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
    GenerationConfig cfg = new GenerationConfig(maxNew, temperature, topK, topP, seed, 32768);
    try (MistralModel m = modelOptions.load()) {
      if (adapter != null) m.attachAdapter(adapter);
      Generator g = new Generator(m);
      if (input.chat != null) {
        int[] ids = g.chatPromptIds(input.chat, cfg);
        int[] out = g.generate(ids, cfg, null);
        System.out.println(m.tokenizer().decode(out, true));
      } else {
        g.generate(
            input.prompt,
            cfg,
            s -> {
              System.out.print(s);
              System.out.flush();
            });
        System.out.println();
      }
    }
    return 0;
  }
}
