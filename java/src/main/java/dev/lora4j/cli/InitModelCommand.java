package dev.lora4j.cli;

import dev.lora4j.model.MistralConfig;
import dev.lora4j.model.RandomModel;
import java.nio.file.Path;
import java.util.concurrent.Callable;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

/** {@code init-model}: a model folder with random weights for a config.json. */
@Command(
    name = "init-model",
    mixinStandardHelpOptions = true,
    description = {
      "Write a Mistral model folder with random bf16 weights for a config.json",
      "(normal(0, initializer_range), norms 1), for tests and benchmarks."
    })
final class InitModelCommand implements Callable<Integer> {
  @Spec CommandSpec spec;

  @Option(names = "--config", required = true, paramLabel = "config.json") Path config;

  @Option(names = "--output", required = true, paramLabel = "DIR") Path output;

  @Option(names = "--tokenizer", paramLabel = "DIR",
      description = "copy tokenizer.json and tokenizer_config.json from this folder")
  Path tokenizer;

  @Option(names = "--seed", defaultValue = "0",
      description = "random seed: the same seed gives the same file on any machine and thread count")
  long seed;

  @Option(names = "--threads", description = "threads generating and writing the weights (default: all processors)")
  Integer threads;

  @Option(names = "--std", defaultValue = "0.02", description = "weight standard deviation")
  double std;

  @Option(names = "--embedding-std", description = "standard deviation of the embedding and LM head (default: --std)")
  Double embeddingStd;

  @Override
  public Integer call() {
    MistralConfig c = MistralConfig.load(config);
    if (threads != null && threads < 1) {
      throw new CommandLine.ParameterException(spec.commandLine(), "--threads must be at least 1, got " + threads);
    }
    int n = threads == null ? Runtime.getRuntime().availableProcessors() : threads;
    RandomModel.write(c, output, seed, std, embeddingStd == null ? std : embeddingStd, tokenizer, n);
    System.out.println("model written to " + output);
    return 0;
  }
}
