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
      "Generate text: greedy by default, sampling with --temperature > 0.",
      "--chat wraps the message in the model's chat template; --prompt is used as plain text."
    })
final class GenerateCommand implements Callable<Integer> {
  @Mixin ModelOptions modelOptions;

  @Option(names = "--adapter", paramLabel = "DIR", description = "PEFT adapter to apply")
  Path adapter;

  @ArgGroup(exclusive = true, multiplicity = "1")
  Input input;

  static final class Input {
    @Option(names = "--prompt", description = "plain-text prompt") String prompt;
    @Option(names = "--chat", description = "a user message, rendered with the chat template") String chat;
  }

  @Option(names = "--max-new-tokens", defaultValue = "128") int maxNew;
  @Option(names = "--temperature", defaultValue = "0") double temperature;
  @Option(names = "--top-k", defaultValue = "0") int topK;
  @Option(names = "--top-p", defaultValue = "1.0") double topP;
  @Option(names = "--seed", defaultValue = "0") long seed;

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
        g.generate(input.prompt, cfg, s -> {
          System.out.print(s);
          System.out.flush();
        });
        System.out.println();
      }
    }
    return 0;
  }
}
