package dev.lora4j.cli;

import dev.lora4j.Device;
import dev.lora4j.MistralModel;
import java.nio.file.Path;
import picocli.CommandLine.Option;

/** Options shared by the commands that load a model. */
final class ModelOptions {
  @Option(names = "--model", required = true, paramLabel = "DIR",
      description = "Hugging Face model folder (config.json, safetensors, tokenizer.json)")
  Path model;

  @Option(names = "--device", defaultValue = "auto", paramLabel = "cpu|cuda|cuda:N|auto",
      description = "where to run (default: ${DEFAULT-VALUE}: the GPU when there is one)")
  String device;

  @Option(names = "--threads", defaultValue = "0",
      description = "CPU threads (0: all cores)")
  int threads;

  @Option(names = "--recompute", defaultValue = "none", paramLabel = "none|layer",
      description = "activation recompute (gradient checkpointing): none or per layer")
  String recompute;

  @Option(names = "--max-positions", defaultValue = "0", paramLabel = "N",
      description = "longest sequence the engine is sized for (0: min(max_position_embeddings, 4096))")
  int maxPositions;

  MistralModel load() {
    MistralModel.Recompute r =
        switch (recompute.toLowerCase(java.util.Locale.ROOT)) {
          case "none" -> MistralModel.Recompute.NONE;
          case "layer" -> MistralModel.Recompute.LAYER;
          default -> throw new IllegalArgumentException("--recompute must be none or layer");
        };
    return MistralModel.load(
        model,
        Device.parse(device),
        MistralModel.LoadOptions.defaults()
            .withThreads(threads)
            .withRecompute(r)
            .withMaxSeqLength(maxPositions));
  }
}
