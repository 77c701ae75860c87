package dev.lora4j.cli;

import dev.lora4j.io.OutputFolder;
import dev.lora4j.model.MistralConfig;
import dev.lora4j.model.RandomModel;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;
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
      "Write a Mistral model folder with random bf16 weights for a config.json (normal(0, --std),"
          + " norms 1), for tests and benchmarks.",
      "The output folder must be new or empty (or --overwrite) and apart from --config and"
          + " --tokenizer; it is written under a temporary name and renamed when complete.",
      ""
    })
final class InitModelCommand implements Callable<Integer> {
  @Spec CommandSpec spec;

  @Option(
      names = "--config",
      required = true,
      paramLabel = "config.json",
      description =
          "the model's config.json (Mistral keys as Hugging Face writes them); never written to")
  Path config;

  @Option(
      names = "--output",
      required = true,
      paramLabel = "DIR",
      description = "model folder to create: new or empty, apart from the inputs")
  Path output;

  @Option(
      names = "--overwrite",
      description = "replace the contents of a non-empty --output folder (default: refuse)")
  boolean overwrite;

  @Option(
      names = "--tokenizer",
      paramLabel = "DIR",
      description =
          "copy tokenizer.json and tokenizer_config.json from this folder (default: none copied)")
  Path tokenizer;

  @Option(
      names = "--seed",
      paramLabel = "N",
      defaultValue = "0",
      description =
          "random seed: the same seed gives the same file on any machine and thread count (default:"
              + " 0)")
  long seed;

  @Option(
      names = "--threads",
      paramLabel = "N",
      description = "threads generating and writing the weights (default: all processors)")
  Integer threads;

  @Option(
      names = "--std",
      paramLabel = "X",
      defaultValue = "0.02",
      description = "standard deviation of the projection weights (default: 0.02)")
  double std;

  @Option(
      names = "--embedding-std",
      paramLabel = "X",
      description = "standard deviation of the embedding and LM head (default: --std)")
  Double embeddingStd;

  @Override
  public Integer call() {
    MistralConfig c = MistralConfig.load(config);
    if (threads != null && threads < 1) {
      throw new CommandLine.ParameterException(
          spec.commandLine(), "--threads must be at least 1, got " + threads);
    }
    int n = threads == null ? Runtime.getRuntime().availableProcessors() : threads;
    Map<String, Path> inputs = new LinkedHashMap<>();
    inputs.put("--config file", config);
    inputs.put("--tokenizer folder", tokenizer);
    OutputFolder.checkApart(output, "--output", inputs);
    try (OutputFolder f = OutputFolder.stage(output, overwrite)) {
      RandomModel.write(
          c, f.path(), seed, std, embeddingStd == null ? std : embeddingStd, tokenizer, n);
      f.commit();
    }
    System.out.println("model written to " + output);
    return 0;
  }
}
